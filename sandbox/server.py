"""The sandbox Space over HTTP: SignalWire's Video REST API plus a loopback control API."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from rooms.signalwire.urls import is_loopback
from sandbox.control import ACTIVITY_CONTROL_ROUTES, MEDIA_PATH, SESSION_CONTROL, session_control
from sandbox.errors import SandboxNotFound
from sandbox.routes import (
    ACTIVITY_BODY_REQUIRED,
    ACTIVITY_ROUTES,
    HANDLERS,
    STREAM_ACTIONS,
    Request,
    check_parent_id,
    stream_body_refused,
)
from sandbox.state import (
    Fault,
    SandboxBadRequest,
    SandboxError,
    SandboxSpace,
    SandboxValidationError,
)
from sandbox.validation import check_boolean_query

logger = logging.getLogger(__name__)

FAULT_BODIES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    429: "Too Many Requests",
    403: "Forbidden",
    422: "Unprocessable Entity",
}
CONTROL_PREFIX = "/__sandbox__/"
# The operations served, by path template of the OpenAPI description and method. A {name}
# template with the same shape as an {id} one is served by the same route.
API_ROUTES: dict[str, dict[str, str]] = {
    "/api/video/conferences": {"GET": "list_conferences", "POST": "create_conf"},
    "/api/video/conferences/{id}": {
        "GET": "get_conf",
        "PUT": "update_conf",
        "DELETE": "delete_conf",
    },
    "/api/video/conferences/{id}/conference_tokens": {"GET": "list_tokens"},
    "/api/video/conference_tokens/{id}": {"GET": "get_token"},
    "/api/video/conference_tokens/{id}/reset": {"POST": "reset_token"},
    "/api/video/rooms": {"GET": "list_rooms", "POST": "create_room"},
    "/api/video/rooms/{id}": {"GET": "get_room", "PUT": "update_room", "DELETE": "delete_room"},
    "/api/video/room_tokens": {"POST": "room_token"},
    **ACTIVITY_ROUTES,
}
CONTROL_ROUTES: dict[str, frozenset[str]] = {
    "/__sandbox__/reset": frozenset({"POST"}),
    "/__sandbox__/seed": frozenset({"POST"}),
    "/__sandbox__/latency": frozenset({"POST"}),
    "/__sandbox__/faults": frozenset({"POST", "DELETE"}),
    "/__sandbox__/requests": frozenset({"GET", "DELETE"}),
    "/__sandbox__/state": frozenset({"GET"}),
    **ACTIVITY_CONTROL_ROUTES,
}
# Actions whose request body the API requires (a JSON object): without one, a 400 (a 422
# for the stream operations, which describe no 400: see sandbox.routes).
BODY_REQUIRED = (
    frozenset({"create_conf", "update_conf", "create_room", "update_room", "room_token"})
    | ACTIVITY_BODY_REQUIRED
)
# Actions that take the boolean query parameter include_active_session.
ACTIVE_SESSION_QUERY = frozenset({"list_conferences", "get_conf", "list_rooms", "get_room"})
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 100  # Ruby's JSON parser refuses deeper documents by default
MAX_SEED_OBJECTS = 1_000_000
_METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$")


_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (_compile(template), methods) for template, methods in API_ROUTES.items()
]
_NO_BODY = object()


class _BodyError(Exception):
    """The request's body cannot be read: answer 400 and close the connection."""


class _Reply:
    """A response to send: status, JSON body (or None for no body) and extra headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.payload: bytes | None = None
        self.content_type = "application/json; charset=utf-8"

    @classmethod
    def media(cls, payload: bytes, content_type: str) -> _Reply:
        """A reply carrying a file rather than JSON."""
        reply = cls(200, None, {"Cache-Control": "private, no-store"})
        reply.payload, reply.content_type = payload, content_type
        return reply

    def encoded(self) -> _Reply:
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
            return _Reply(500, {"error": "Internal Server Error"}).encoded()
        return self


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SignalWireSandbox/1.0"
    sys_version = ""
    timeout = 300
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        try:  # answers go out in one write; no need to wait for Nagle
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.sandbox.verbose:
            # A media link's query is its credential: never in a log line.
            line = re.sub(r"(/__sandbox__/media/\S*?)\?\S*", r"\1?[redacted]", format % args)
            logger.info("%s %s", self.address_string(), line)

    def handle_one_request(self) -> None:
        """Read one request and answer it, whatever its method (unknown ones get 405)."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return  # parse_request() has answered (through send_error)
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a request the HTTP layer refused with a JSON body and close the connection."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.close_connection = True
        self._send(_Reply(code, {"error": phrase}, {"Connection": "close"}))

    # --- plumbing -----------------------------------------------------------------------

    @property
    def space(self) -> SandboxSpace:
        return self.server.sandbox.space

    def _read_body(self) -> bytes:
        coding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if coding:
            # Only a chunked body can be framed; any other coding leaves its length unknown.
            if coding.rsplit(",", 1)[-1].strip() != "chunked":
                raise _BodyError(f"unsupported Transfer-Encoding: {coding}")
            return self._read_chunked()
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isascii() or not declared.isdigit():
            raise _BodyError("bad Content-Length")
        length = int(declared) if len(declared) < 20 else MAX_BODY_BYTES + 1
        if length > MAX_BODY_BYTES:
            raise _BodyError("body too large")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _BodyError("body shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_text = self.rfile.readline(1026).split(b";")[0].strip()
            try:
                size = int(size_text, 16) if size_text.isalnum() and len(size_text) < 16 else -1
            except ValueError:
                size = -1
            if size < 0:
                raise _BodyError("bad chunk size")
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError("body too large")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise _BodyError("body ends inside a chunk")
            chunks.append(chunk)
            self.rfile.readline(1026)

    def _send(self, reply: _Reply) -> None:
        reply = reply.encoded()
        payload = reply.payload or b""
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
        elif reply.status != 204:
            self.send_header("Content-Length", "0")
        if self.command == "HEAD":
            payload = b""  # a HEAD answer has the headers of its body, never the body itself
        # end_headers() without its flush, so that headers and body leave in one segment.
        buffer: list[bytes] = self._headers_buffer  # type: ignore[attr-defined]
        buffer.append(b"\r\n")
        buffer.append(payload)
        self.flush_headers()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self) -> None:
        path, query = _split_target(self.path)
        try:
            raw = self._read_body()
        except (_BodyError, ValueError, OSError):
            self.close_connection = True
            self._send(_Reply(400, {"error": "Bad Request"}, {"Connection": "close"}))
            return
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            self._send(self._control(self.command, path, raw, query))
        elif path == "/api" or path.startswith("/api/"):
            self._api(path, query, raw)
        else:
            self._send(_Reply(404, {"error": "Not Found"}))

    def _parse_body(self, raw: bytes) -> Any:
        """The JSON value of the body, _NO_BODY when there is none, or the parse error."""
        if not raw.strip(b" \t\r\n"):
            return _NO_BODY
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            return ValueError(f"not a JSON media type: {media_type}")
        return _parse_json(raw)

    # --- the Video REST API -------------------------------------------------------------

    def _api(self, path: str, query: str, raw: bytes) -> None:
        space = self.space
        method = self.command
        received = time.time()
        parsed = self._parse_body(raw)
        logged_body = None if parsed is _NO_BODY or isinstance(parsed, Exception) else parsed
        if space.latency:
            time.sleep(space.latency)
        fault = space.take_fault(method, path, after_processing=False)
        if fault is None:
            try:
                reply = self._api_reply(method, path, query, parsed)
            except Exception:  # the sandbox answers 500 like a real server would
                logger.exception("sandbox failed on %s %s", method, path)
                reply = _Reply(500, {"error": "Internal Server Error"})
            fault = space.take_fault(method, path, after_processing=True)
        if fault is not None:
            if fault.status == "drop":
                space.log_request(method, path, query, "drop", received, logged_body)
                space.notify(method, path, "drop", None)
                self._drop()
                return
            reply = _fault_reply(fault)
        reply = reply.encoded()
        # Log and notify first: once the answer is out, the client may look at the log.
        space.log_request(method, path, query, reply.status, received, logged_body)
        space.notify(method, path, reply.status, reply.body)
        self._send(reply)

    def _authorised(self) -> bool:
        sandbox = self.server.sandbox
        header = self.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        user, password = b"", b""
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            user, _, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, sandbox.project_id.encode("utf-8"))
        password_ok = hmac.compare_digest(password, sandbox.api_token.encode("utf-8"))
        return user_ok and password_ok

    def _api_reply(self, method: str, path: str, query: str, parsed: Any) -> _Reply:
        normalised = path.rstrip("/") if len(path) > 1 else path
        for pattern, route_methods in _ROUTES:
            match = pattern.match(normalised)
            if match:
                methods = route_methods
                break
        else:
            return _Reply(404, {"error": "Not Found"})
        if method not in methods:
            return _method_not_allowed(methods)
        if not self._authorised():
            return _Reply(401, {"error": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="api"'})
        args = [unquote(group) for group in match.groups()]
        action = methods[method]
        if isinstance(parsed, Exception):
            if action in STREAM_ACTIONS:
                refused = stream_body_refused()
                return _Reply(refused.status, refused.body())
            return _Reply(400, {"error": "Bad Request"})
        if action in BODY_REQUIRED and parsed is _NO_BODY and action not in STREAM_ACTIONS:
            return _Reply(400, {"error": "Bad Request"})
        body = {} if parsed is _NO_BODY else parsed
        host = self.headers.get("Host") or self.server.sandbox.url.split("://", 1)[1]
        base_url = f"http://{host}{normalised}"
        space = self.space
        try:
            if action in HANDLERS:
                check_parent_id(action, args)
                request = Request(args, base_url, f"http://{host}", query, body)
                status, answer = HANDLERS[action](space, request)
                return _Reply(status, answer)
            if action in ACTIVE_SESSION_QUERY:
                errors = check_boolean_query(query, "include_active_session")
                if errors:
                    raise SandboxValidationError(errors)
            if action == "list_conferences":
                return _Reply(
                    200, space.with_active_session(space.list_conferences(base_url, query), query)
                )
            if action == "create_conf":
                return _Reply(200, space.create_conference(_require_object(body)))
            if action == "get_conf":
                return _Reply(200, space.with_active_session(space.get_conference(args[0]), query))
            if action == "update_conf":
                return _Reply(200, space.api_update_conference(args[0], _require_object(body)))
            if action == "delete_conf":
                space.delete_conference(args[0])
                return _Reply(204)
            if action == "list_tokens":
                return _Reply(200, space.list_conference_tokens(args[0], base_url, query))
            if action == "get_token":
                return _Reply(200, space.get_conference_token(args[0]))
            if action == "reset_token":
                return _Reply(200, space.reset_conference_token(args[0]))
            if action == "list_rooms":
                return _Reply(
                    200, space.with_active_session(space.list_rooms(base_url, query), query)
                )
            if action == "create_room":
                return _Reply(200, space.create_room(_require_object(body)))
            if action == "get_room":
                return _Reply(200, space.with_active_session(space.get_room(args[0]), query))
            if action == "update_room":
                return _Reply(200, space.api_update_room(args[0], _require_object(body)))
            if action == "delete_room":
                space.delete_room(args[0])
                return _Reply(204)
            if action == "room_token":
                return _Reply(200, space.create_room_token(_require_object(body)))
        except SandboxError as exc:
            return _Reply(exc.status, exc.body())
        raise AssertionError(action)  # pragma: no cover

    # --- the control API ----------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes, query: str = "") -> _Reply:
        if not is_loopback(self.client_address[0]):
            return _Reply(403, {"error": "Forbidden"})
        space = self.space
        media = MEDIA_PATH.match(path)
        if media is not None:
            if method not in ("GET", "HEAD"):
                return _method_not_allowed(("GET",))
            status, payload = space.download(media.group(1).lower(), query)
            if payload is None:
                return _Reply(status, {"error": "Forbidden" if status == 403 else "Not Found"})
            return _Reply.media(payload, "video/mp4")
        allowed = CONTROL_ROUTES.get(path.rstrip("/"))
        if allowed is None and SESSION_CONTROL.match(path.rstrip("/")):
            allowed = frozenset({"POST"})
        if allowed is None:
            return _Reply(404, {"error": "Not Found"})
        if method not in allowed:
            return _method_not_allowed(allowed)
        # Whatever its Content-Type (curl -d says a form): the control API reads only JSON.
        body: Any = _parse_json(raw) if raw.strip(b" \t\r\n") else {}
        if not isinstance(body, dict):
            return _Reply(400, {"error": "the body must be a JSON object"})
        route = (method, path.rstrip("/"))
        try:
            if route == ("POST", "/__sandbox__/reset"):
                space.reset()
                return _Reply(200, space.state())
            if route == ("POST", "/__sandbox__/seed"):
                counts = [body.get(name, 0) for name in ("conferences", "rooms", "sessions")]
                if any(isinstance(n, int) and n > MAX_SEED_OBJECTS for n in counts):
                    raise ValueError(f"at most {MAX_SEED_OBJECTS} objects of a kind per seed")
                space.seed(
                    conferences=body.get("conferences", 0),
                    rooms=body.get("rooms", 0),
                    seed=body.get("seed", 0),
                    sessions=body.get("sessions", 0),
                )
                return _Reply(200, space.state())
            if route == ("POST", "/__sandbox__/latency"):
                seconds = body.get("seconds", 0)
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    raise ValueError("seconds must be a number")
                space.set_latency(seconds)
                return _Reply(200, {"seconds": space.latency})
            if route == ("POST", "/__sandbox__/faults"):
                unknown = set(body) - {
                    "status",
                    "count",
                    "fraction",
                    "retry_after",
                    "methods",
                    "path_prefix",
                    "after_processing",
                }
                if unknown:
                    raise ValueError(f"unknown fault options: {sorted(unknown)}")
                if "status" not in body:
                    raise ValueError("status is required")
                methods = body.get("methods")
                if methods is not None and not (
                    isinstance(methods, list) and all(isinstance(m, str) for m in methods)
                ):
                    raise ValueError("methods must be a list of strings")
                space.inject_fault(**body)
                return _Reply(200, {"faults": len(space.faults)})
            if route == ("DELETE", "/__sandbox__/faults"):
                space.clear_faults()
                return _Reply(200, {"faults": 0})
            if route == ("GET", "/__sandbox__/requests"):
                return _Reply(200, {"requests": space.requests})
            if route == ("DELETE", "/__sandbox__/requests"):
                space.clear_requests()
                return _Reply(200, {"requests": []})
            if route == ("GET", "/__sandbox__/state"):
                return _Reply(200, space.state())
            answered = session_control(space, method, route[1], body)
            if answered is not None:
                return _Reply(*answered)
        except SandboxNotFound:
            return _Reply(404, {"error": "Not Found"})
        except (TypeError, ValueError) as exc:
            return _Reply(400, {"error": str(exc)})
        return _Reply(404, {"error": "Not Found"})


def _split_target(target: str) -> tuple[str, str]:
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


def _parse_json(raw: bytes) -> Any:
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


def _method_not_allowed(methods: Iterable[str]) -> _Reply:
    allow = ", ".join(sorted(methods, key=_METHOD_ORDER.index))
    return _Reply(405, {"error": "Method Not Allowed"}, {"Allow": allow})


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SandboxBadRequest()
    return body


def _fault_reply(fault: Fault) -> _Reply:
    status = int(fault.status)
    headers = {}
    if fault.retry_after is not None and status in (429, 503):
        headers["Retry-After"] = str(math.ceil(fault.retry_after))
    return _Reply(status, {"error": FAULT_BODIES[status]}, headers)


class SandboxServer:
    """A sandbox Space served over HTTP in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        project_id: str = "sandbox-project",
        api_token: str = "sandbox-token",
        *,
        space: SandboxSpace | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.project_id = project_id
        self.api_token = api_token
        self.verbose = verbose
        self.space = space if space is not None else SandboxSpace(project_id=project_id)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<SandboxServer {self.url if self._httpd else 'stopped'}>"

    def start(self) -> SandboxServer:
        """Bind the socket and serve in a daemon thread; return self."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-space-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. http://127.0.0.1:8765."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Block until stop() is called from another thread (or a signal handler)."""
        if self._thread is None:
            self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.2)

    def stop(self) -> None:
        """Stop serving, close every client connection and the listening socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with httpd.connections_lock:
            connections = list(httpd.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["SandboxServer"]
