"""One-time form nonces: a form posted twice (a reload, a double click) is acted on once.

The session keeps only the random nonces still unused, never what a form produced, so a
page that shows a secret can answer its POST directly instead of parking the secret in
the session for a redirect.
"""

from __future__ import annotations

import hmac
import secrets

from django.http import HttpRequest

SESSION_KEY = "rooms:once"
# Nonces kept per purpose: enough for a few open tabs of the same page.
KEEP = 10


def issue(request: HttpRequest, purpose: str) -> str:
    """Make a nonce for one submission of a form and remember it in the session."""
    nonce = secrets.token_urlsafe(18)
    pending = dict(request.session.get(SESSION_KEY) or {})
    pending[purpose] = [*pending.get(purpose, []), nonce][-KEEP:]
    request.session[SESSION_KEY] = pending
    return nonce


def consume(request: HttpRequest, purpose: str, nonce: str) -> bool:
    """Use a nonce up; False when it was never issued here or has been used already."""
    pending = dict(request.session.get(SESSION_KEY) or {})
    kept = list(pending.get(purpose, []))
    match = next((n for n in kept if nonce and hmac.compare_digest(n, nonce)), None)
    if match is None:
        return False
    kept.remove(match)
    pending[purpose] = kept
    request.session[SESSION_KEY] = pending
    # Written now, not when the response leaves: a second POST already on its way reads
    # the session after this and finds the nonce gone.
    request.session.save()
    return True
