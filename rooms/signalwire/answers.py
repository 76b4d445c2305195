"""Answers as received: status, headers and a capped body, and the typed error each one means."""

from __future__ import annotations

import json
import logging
from typing import Any

import requests
from urllib3.exceptions import (
    ProtocolError,
    ReadTimeoutError,
)

from rooms.signalwire.errors import (
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    SignalWireError,
    UnavailableError,
    UnexpectedResponseError,
    ValidationError,
)
from rooms.signalwire.retry import retry_after_seconds

logger = logging.getLogger("rooms.signalwire")

REQUEST_ID_HEADERS = ("X-Request-Id", "X-Signalwire-Request-Id")
MESSAGE_MAX = 500


class Answer:
    """A received answer: status, headers and the body already read (within its cap)."""

    __slots__ = ("status_code", "headers", "reason", "content", "_retries")

    def __init__(self, response: requests.Response, body: bytes) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.reason = response.reason
        self.content = body
        self._retries = getattr(response.raw, "retries", None)

    @property
    def attempts(self) -> int:
        """How many attempts urllib3 made to get this answer."""
        return len(getattr(self._retries, "history", ())) + 1

    def retried_after_send(self) -> bool:
        """Tell whether an earlier attempt of this request may have reached the server."""
        history = getattr(self._retries, "history", ())
        return any(isinstance(h.error, (ReadTimeoutError, ProtocolError)) for h in history)




def request_id_of(response: requests.Response | Answer) -> str | None:
    """Read SignalWire's request id from an answer, when it sent one."""
    for header in REQUEST_ID_HEADERS:
        value = response.headers.get(header)
        if value:
            return value[:200]
    return None


def status_error(method: str, path: str, response: Answer) -> SignalWireError:
    """Map a non-2xx answer to the typed error a caller can act on."""
    status = response.status_code
    facts: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "request_id": request_id_of(response),
    }
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"][:MESSAGE_MAX]
    if status in (401, 403):
        hint = AuthenticationError.default_message
        return AuthenticationError(f"{message}: {hint}" if message else hint, **facts)
    if status == 404:
        return NotFoundError(message or NotFoundError.default_message, **facts)
    if status == 422:
        field_errors, non_field_errors = validation_messages(body)
        return ValidationError(
            field_errors=field_errors, non_field_errors=non_field_errors or [], **facts
        )
    if status == 400:
        return ValidationError(non_field_errors=[message or "Bad Request"], **facts)
    if status == 429:
        return RateLimitedError(
            retry_after=retry_after_seconds(response.headers.get("Retry-After")), **facts
        )
    if status >= 500:
        return UnavailableError(message or response.reason or "", **facts)
    return UnexpectedResponseError(f"unexpected status {response.reason or ''}".strip(), **facts)


def validation_messages(body: object) -> tuple[dict[str, list[str]], list[str]]:
    """Split a 422 errors array into per-field messages and messages for no field."""
    field_errors: dict[str, list[str]] = {}
    non_field_errors: list[str] = []
    entries = body.get("errors") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        text = str(entry.get("message") or entry.get("code") or "is invalid")[:MESSAGE_MAX]
        attribute = entry.get("attribute")
        if isinstance(attribute, str) and attribute:
            field_errors.setdefault(attribute, []).append(text)
        else:
            non_field_errors.append(text)
    if not field_errors and not non_field_errors:
        non_field_errors.append("SignalWire rejected the request")
    return field_errors, non_field_errors


