"""Which database columns hold secrets, and whether a query-string lookup reaches one.

A list filtered by a lookup on a secret column (`url__startswith=rtmp://host/app/a`) shows
or hides rows by the secret's value, so anyone who may view the list could read the
secret back one character at a time. Admin pages refuse every lookup that reaches one of
these columns, directly or through relations (rooms.admin.querystrings).

Error texts from SignalWire may echo a secret the portal sent (a stream key, a token):
mask_secrets_in hides the values the portal knows, in the forms they may come back in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP

# Model label (app_label.ModelName, lower case) -> its secret columns.
SECRET_COLUMNS: dict[str, frozenset[str]] = {
    # The URL carries the destination's stream key.
    "rooms.stream": frozenset({"url"}),
    # Moderator and guest token values.
    "rooms.conferencetoken": frozenset({"token"}),
    # An intent's data holds what it sends, a stream's URL included.
    "rooms.remoteintent": frozenset({"data"}),
    "auth.user": frozenset({"password"}),
    # The TOTP seed of a staff member's authenticator app.
    "otp_totp.totpdevice": frozenset({"key"}),
    # What a failed login sent (the admin keeps it off its pages).
    "axes.accessattempt": frozenset({"get_data", "post_data"}),
    "sessions.session": frozenset({"session_data"}),
    # A Space's API token, encrypted; and the variable holding it says where to look.
    "rooms.space": frozenset({"token_encrypted", "token_env"}),
}


def is_secret_column(model: type[models.Model], name: str) -> bool:
    """Tell whether a model's field (by name or attname) is a secret column."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return field.name in SECRET_COLUMNS.get(model._meta.label_lower, frozenset())


def lookup_reaches_secret(model: type[models.Model], lookup: str) -> bool:
    """Tell whether a filter lookup (`streams__url__startswith`) reads a secret column.

    The lookup's parts are followed through relations, forward and reverse, as the ORM
    follows them; the first part that is no field of the model reached ends the path
    (it is a lookup, a transform, or not a field at all).
    """
    current: type[models.Model] | None = model
    for part in lookup.split(LOOKUP_SEP):
        if current is None:
            return False
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if is_secret_column(current, part):
            return True
        if not field.is_relation:
            return False
        current = field.related_model
    return False


# --- masking secret values the portal knows in texts it stores or shows --------------------

MASK = "••••••••"
# Shorter fragments of a secret are left alone: masking every "app" or "live" in an error
# would hide the message without hiding anything secret.
MIN_FRAGMENT = 4


def encoded_forms(value: str) -> set[str]:
    """A value as it may be echoed: raw, percent-encoded (twice over, too) and decoded."""
    forms = {value, unquote(value)}
    for safe in ("", "/"):
        once = quote(value, safe=safe)
        forms.update({once, quote(once, safe=safe), quote_plus(value, safe=safe)})
    return {form for form in forms if form}


def mask_secrets_in(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of these secrets (any letter case) in a text with a mask."""
    fragments = {form for secret in secrets if secret for form in encoded_forms(secret)}
    fragments = {form for form in fragments if len(form) >= MIN_FRAGMENT}
    if not text or not fragments:
        return text
    pattern = "|".join(re.escape(f) for f in sorted(fragments, key=len, reverse=True))
    return re.sub(pattern, MASK, text, flags=re.IGNORECASE)
