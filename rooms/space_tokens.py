"""API tokens of Spaces kept in the database: encrypted with Fernet keys from the settings.

`SPACE_TOKEN_KEYS` lists Fernet keys, newest first: the first encrypts, every one decrypts,
so a key is rotated by putting a new one in front and running `manage.py rotate_space_tokens`.
Without it, one key is derived from SECRET_KEY (and its fallbacks), so a local portal needs
no setting.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class TokenUnreadable(Exception):
    """A stored token cannot be decrypted with any key the settings hold."""


def _derived_key(secret: str) -> bytes:
    digest = hashlib.sha256(f"room-portal space token:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def keys() -> list[bytes]:
    """Return the Fernet keys in use, newest first."""
    configured = [key.strip() for key in settings.SPACE_TOKEN_KEYS if key.strip()]
    if configured:
        return [key.encode() for key in configured]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derived_key(secret) for secret in secrets if secret]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys()])


def encrypt(token: str) -> str:
    """Encrypt a token with the newest key."""
    return _fernet().encrypt(token.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt a stored token with whichever key made it."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise TokenUnreadable(
            "The stored API token cannot be decrypted with SPACE_TOKEN_KEYS (or SECRET_KEY): "
            "a key it was encrypted with is missing."
        ) from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt a stored token with the newest key."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise TokenUnreadable("The stored API token cannot be decrypted to rotate it.") from exc


def key_problem() -> str:
    """Say what is wrong with SPACE_TOKEN_KEYS, or return ''."""
    configured = [key for key in settings.SPACE_TOKEN_KEYS if key.strip()]
    for index, key in enumerate(configured, start=1):
        try:
            Fernet(key.strip().encode())
        except (ValueError, TypeError):
            return f"SPACE_TOKEN_KEYS: key {index} is not a Fernet key (32 url-safe base64 bytes)."
    return ""
