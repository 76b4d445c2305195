"""Staff accounts: log-in lockout, the TOTP second factor and their admin (no models of its own)."""
