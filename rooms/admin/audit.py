"""Admin pages: audit."""
