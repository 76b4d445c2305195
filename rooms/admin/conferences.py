"""Admin pages: conferences."""
