"""One-time form nonces: a form posted twice (a reload, a double click, two at once) acts once.

A nonce lives in Redis, not in the session: every request saves the session, so a slower
request of the same session would write a used nonce back. Issuing sets a key only if it
is new, with a time to live; using it up deletes the key, and only the one request whose
delete removed it may act, however many arrive together. The key is a digest of the
user, the session, the form's purpose and the nonce, so a nonce works only for the form
and the person it was issued to, and Redis never holds the session key.

When Redis cannot be reached the form cannot be checked, so it does nothing and says so:
never a second run.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from redis.exceptions import RedisError

from rooms.connections import redis_client

logger = logging.getLogger("rooms.admin")

# How long a form may stay open before it must be loaded again.
TTL_SECONDS = 12 * 3600
UNAVAILABLE = (
    "Nothing was done: the portal cannot check that this form is sent only once because "
    "Redis cannot be reached. Try again once it is back."
)
CANNOT_ISSUE = (
    "This form cannot be sent now: the portal cannot check that it is sent only once "
    "because Redis cannot be reached. Load the page again once it is back."
)
EXPIRED_OR_USED = "That form was already sent, or was open too long; nothing more was done."


class Unavailable(Exception):
    """Redis cannot be reached, so no nonce can be issued or used up."""


def _key(request: HttpRequest, purpose: str, nonce: str) -> str:
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    binding = "\0".join(
        (
            str(getattr(user, "pk", "") or ""),
            getattr(session, "session_key", None) or "",
            purpose,
            nonce,
        )
    )
    digest = hashlib.sha256(binding.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{settings.REDIS_KEY_PREFIX}once:{digest}"


def issue(request: HttpRequest, purpose: str) -> str:
    """Make a nonce for one submission of a form (bound to this user and session).

    When Redis cannot be reached the page still shows, with an error saying the form
    cannot be sent now; the nonce it carries is then never accepted.
    """
    if getattr(request, "session", None) is not None and not request.session.session_key:
        request.session.save()  # the nonce is bound to the session: it needs its key now
    nonce = secrets.token_urlsafe(18)
    try:
        redis_client().set(_key(request, purpose, nonce), 1, nx=True, ex=TTL_SECONDS)
    except RedisError as exc:
        logger.warning("one-time form nonce not stored (%s)", type(exc).__name__)
        messages.error(request, CANNOT_ISSUE)
    return nonce


def consume(request: HttpRequest, purpose: str, nonce: str) -> bool:
    """Use a nonce up; False when it was never issued here, has expired or was used already.

    Raises Unavailable when Redis cannot be reached: the caller must then do nothing.
    """
    if not nonce or len(nonce) > 64:
        return False
    try:
        return bool(redis_client().delete(_key(request, purpose, nonce)))
    except RedisError as exc:
        raise Unavailable(UNAVAILABLE) from exc


def spend(request: HttpRequest, purpose: str, already: str = EXPIRED_OR_USED) -> bool:
    """Use up the nonce the POST carries; when it may not act, say why and return False."""
    try:
        if consume(request, purpose, request.POST.get("nonce", "")):
            return True
    except Unavailable as exc:
        logger.warning("one-time form refused: Redis cannot be reached")
        messages.error(request, str(exc))
        return False
    messages.warning(request, already)
    return False
