"""Paging of the sandbox Space's lists: sorted keys, signed page tokens, absolute links."""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from rooms.signalwire import schema
from sandbox.errors import SandboxValidationError
from sandbox.validation import (
    INT32_MAX,
    error_item,
    parse_datetime,
    parse_query_integer,
    query_values,
)

Key = tuple[str, str]
_MAX_MICROS = 10**17
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly."""
    return (moment - _EPOCH) // _ONE_MICRO


def newest_first(moment_micros: int, object_id: str) -> Key:
    """A sort key that puts later moments first (lists of history are newest first)."""
    return (f"{_MAX_MICROS - moment_micros:017d}", object_id)


class Collection:
    """Objects by id, plus their (created_at, id) order and a name index."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.keys: list[Key] = []
        self.key_of: dict[str, Key] = {}
        self.names: dict[str, str] = {}

    def insert(self, obj: dict[str, Any]) -> None:
        key = (obj["created_at"], obj["id"])
        self.objects[obj["id"]] = obj
        self.key_of[obj["id"]] = key
        self.names[obj["name"]] = obj["id"]
        if not self.keys or key > self.keys[-1]:
            self.keys.append(key)
        else:
            bisect.insort(self.keys, key)

    def bulk_insert(self, objs: list[dict[str, Any]]) -> None:
        for obj in objs:
            key = (obj["created_at"], obj["id"])
            self.objects[obj["id"]] = obj
            self.key_of[obj["id"]] = key
            self.names[obj["name"]] = obj["id"]
            self.keys.append(key)
        self.keys.sort()

    def remove(self, object_id: str) -> dict[str, Any] | None:
        obj = self.objects.pop(object_id, None)
        key = self.key_of.pop(object_id, None)
        if key is not None:
            index = bisect.bisect_left(self.keys, key)
            if index < len(self.keys) and self.keys[index] == key:
                del self.keys[index]
        if obj is not None and self.names.get(obj["name"]) == object_id:
            del self.names[obj["name"]]
        return obj

    def rename(self, object_id: str, old: str, new: str) -> None:
        if self.names.get(old) == object_id:
            del self.names[old]
        self.names[new] = object_id

    def owner_of(self, name: str) -> str | None:
        object_id = self.names.get(name)
        obj = self.objects.get(object_id) if object_id else None
        if obj is not None and obj.get("name") == name:
            return object_id
        return None

    def clear(self) -> None:
        self.objects.clear()
        self.keys.clear()
        self.key_of.clear()
        self.names.clear()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _parse_filter_time(value: str) -> datetime | None:
    if value.isascii() and value.isdigit():
        try:
            return datetime.fromtimestamp(int(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_datetime(value)


class PagingMixin:
    """The list paging of a SandboxSpace."""

    _secret: bytes

    def _page_token(self, scope: str, key: Key) -> str:
        payload = b64(json.dumps({"s": scope, "k": list(key)}, separators=(",", ":")).encode())
        signature = hmac.new(self._secret, f"page:{payload}".encode(), hashlib.sha256).digest()
        return f"{payload}.{b64(signature[:12])}"

    def _read_page_token(self, scope: str, token: str) -> Key | None:
        try:
            payload, signature = token.split(".")
            expected = hmac.new(self._secret, f"page:{payload}".encode(), hashlib.sha256)
            if not hmac.compare_digest(expected.digest()[:12], unb64(signature)):
                return None
            data = json.loads(unb64(payload))
            key = data["k"]
            if data["s"] != scope or len(key) != 2 or not all(isinstance(k, str) for k in key):
                return None
            return (key[0], key[1])
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            return None

    def _list(
        self,
        scope: str,
        keys: list[Key],
        objects: Mapping[str, dict[str, Any]],
        base_url: str,
        query: str,
        *,
        filters: bool,
        shape: Callable[[dict[str, Any]], dict[str, Any]] = dict,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One page of `keys` (sorted), with links; `errors` from the caller's own checks."""
        params = query_values(query)
        errors = list(errors or [])
        page_size = schema.PAGE_SIZE_DEFAULT
        raw_size = _single(params, "page_size")
        if raw_size is not None:
            page_size, message = parse_query_integer(
                raw_size, "page_size", schema.PAGE_SIZE_MIN, schema.PAGE_SIZE_MAX
            )
            if message:
                errors.append(error_item("page_size", message))
        page_number = 0
        raw_number = _single(params, "page_number")
        if raw_number is not None:
            page_number, message = parse_query_integer(raw_number, "page_number", 0, INT32_MAX)
            if message:
                errors.append(error_item("page_number", message))
        after: Key | None = None
        raw_token = _single(params, "page_token")
        if raw_token:
            after = self._read_page_token(scope, raw_token)
            if after is None:
                errors.append(error_item("page_token", "Page token is invalid"))
        elif page_number > 0:
            errors.append(error_item("page_token", "Page token must be present"))
        if filters:
            predicate, filter_errors = _time_filter(params)
            errors += filter_errors
        if errors:
            raise SandboxValidationError(errors)

        def wanted(key: Key) -> bool:
            obj = objects.get(key[1])
            return obj is not None and (predicate is None or predicate(obj))

        start = 0 if after is None else bisect.bisect_right(keys, after)
        data: list[dict[str, Any]] = []
        index = start
        last_key: Key | None = None
        while index < len(keys) and len(data) < page_size:
            key = keys[index]
            if wanted(key):
                data.append(shape(objects[key[1]]))
                last_key = key
            index += 1
        has_next = False
        if len(data) == page_size:
            probe = index
            while probe < len(keys):
                if wanted(keys[probe]):
                    has_next = True
                    break
                probe += 1
        extras = [
            (name, value)
            for name, value in parse_qsl(query, keep_blank_values=True)
            if name not in ("page_number", "page_size", "page_token")
        ]

        def link(params_: list[tuple[str, Any]]) -> str:
            return f"{base_url}?{urlencode(extras + params_)}"

        links: dict[str, str] = {
            "self": f"{base_url}?{query}" if query else base_url,
            "first": link([("page_size", page_size)]),
        }
        if has_next and last_key is not None:
            links["next"] = link(
                [
                    ("page_number", page_number + 1),
                    ("page_size", page_size),
                    ("page_token", self._page_token(scope, last_key)),
                ]
            )
        if after is not None and start > 0:
            back, found = start, 0
            while back > 0 and found < page_size:
                back -= 1
                if wanted(keys[back]):
                    found += 1
            if back == 0 or page_number <= 1:
                links["prev"] = links["first"]
            else:
                links["prev"] = link(
                    [
                        ("page_number", page_number - 1),
                        ("page_size", page_size),
                        ("page_token", self._page_token(scope, keys[back - 1])),
                    ]
                )
        return {"links": links, "data": data}


def _time_filter(
    params: dict[str, list[str]],
) -> tuple[Callable[[dict[str, Any]], bool] | None, list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    bounds: dict[str, datetime] = {}
    for name in ("starts_after", "ends_before"):
        raw = _single(params, name)
        if raw:
            moment = _parse_filter_time(raw)
            if moment is None:
                human = name.replace("_", " ").capitalize()
                errors.append(error_item(name, f"{human} must be a valid RFC 3339 datetime"))
            else:
                bounds[name] = moment
    if not bounds:
        return None, errors

    def predicate(obj: dict[str, Any]) -> bool:
        if "starts_after" in bounds:
            start = obj.get("join_from")
            moment = parse_datetime(start) if isinstance(start, str) else None
            if moment is None or moment < bounds["starts_after"]:
                return False
        if "ends_before" in bounds:
            end = obj.get("join_until")
            moment = parse_datetime(end) if isinstance(end, str) else None
            if moment is None or moment > bounds["ends_before"]:
                return False
        return True

    return predicate, errors
