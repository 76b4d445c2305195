"""Admin pages: sync."""
