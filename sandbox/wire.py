"""The sandbox's HTTP replies and strict JSON: what its API and control handlers share."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

# The sandbox's HTTP log keeps one name for all of its serving, the one operators know.
logger = logging.getLogger("sandbox.server")

MAX_JSON_DEPTH = 100  # Ruby's JSON parser refuses deeper documents by default
METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")
NO_BODY = object()  # what parse_body() answers for a request without a body


class Reply:
    """A response to send: status, JSON body (or None for no body) and extra headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.payload: bytes | None = None
        self.content_type = "application/json; charset=utf-8"

    @classmethod
    def media(cls, payload: bytes, content_type: str) -> Reply:
        """A reply carrying a file rather than JSON."""
        reply = cls(200, None, {"Cache-Control": "private, no-store"})
        reply.payload, reply.content_type = payload, content_type
        return reply

    def encoded(self) -> Reply:
        """This reply with its JSON bytes; a 500 instead if the body is not strict JSON."""
        if self.payload is not None:
            return self
        if self.body is None or self.status == 204:
            self.payload = b""
            return self
        try:
            self.payload = json.dumps(self.body, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError):  # e.g. a NaN stored with validate=False
            logger.exception("sandbox cannot encode an answer")
            return Reply(500, {"error": "Internal Server Error"}).encoded()
        return self


def method_not_allowed(methods: Iterable[str]) -> Reply:
    """A 405 that names the methods the path takes."""
    allow = ", ".join(sorted(methods, key=METHOD_ORDER.index))
    return Reply(405, {"error": "Method Not Allowed"}, {"Allow": allow})


def split_target(target: str) -> tuple[str, str]:
    """Split a request target into its path and query (absolute-form targets too)."""
    if not target.startswith("/"):
        parts = urlsplit(target)
        return parts.path or target, parts.query
    path, _, query = target.partition("?")
    return path, query.partition("#")[0]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """Tell whether arrays and objects nest deeper than limit (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(raw: bytes) -> Any:
    """Parse strict JSON (no NaN, no infinities, bounded nesting); return the error if not."""
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError too
        return exc
    if _too_deep(value, MAX_JSON_DEPTH):
        return ValueError("the JSON document nests too deeply")
    return value
