"""The sandbox's HTTP handler: framing, the Video REST API's routes, and the way to control."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import socket
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote

from sandbox.control import control_reply, is_control_path
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
from sandbox.wire import NO_BODY, Reply, logger, method_not_allowed, parse_json, split_target

FAULT_BODIES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    429: "Too Many Requests",
    403: "Forbidden",
    422: "Unprocessable Entity",
}
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
# Actions whose request body the API requires (a JSON object): without one, a 400 (a 422
# for the stream operations, which describe no 400: see sandbox.routes).
BODY_REQUIRED = (
    frozenset({"create_conf", "update_conf", "create_room", "update_room", "room_token"})
    | ACTIVITY_BODY_REQUIRED
)
# Actions that take the boolean query parameter include_active_session.
ACTIVE_SESSION_QUERY = frozenset({"list_conferences", "get_conf", "list_rooms", "get_room"})
MAX_BODY_BYTES = 1024 * 1024


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$")


_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (_compile(template), methods) for template, methods in API_ROUTES.items()
]


class _BodyError(Exception):
    """The request's body cannot be read: answer 400 and close the connection."""


class ServedProject(Protocol):
    """What the handler reads of one project the server answers for."""

    @property
    def api_token(self) -> str: ...

    @property
    def space(self) -> SandboxSpace: ...


class Served(Protocol):
    """What the handler reads of the SandboxServer it answers for."""

    space: SandboxSpace
    verbose: bool

    @property
    def url(self) -> str: ...

    @property
    def spaces(self) -> Mapping[str, SandboxSpace]: ...

    def project(self, project_id: str) -> ServedProject | None: ...


class SandboxHTTPServer(ThreadingHTTPServer):
    """The listening socket: one thread per connection, each connection tracked to close."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Served) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        # API requests being answered (a latency fault may hold one for seconds).
        self.answering = 0
        self.answering_changed = threading.Condition()
        super().__init__(address, SandboxHandler)

    def wait_until_answered(self, timeout: float) -> bool:
        """Wait until no API request is being answered; False if one still is at the timeout."""
        with self.answering_changed:
            return self.answering_changed.wait_for(lambda: self.answering == 0, timeout)


class SandboxHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests: the Video REST API, or the loopback control API."""

    protocol_version = "HTTP/1.1"
    server_version = "SignalWireSandbox/1.0"
    sys_version = ""
    timeout = 300
    server: SandboxHTTPServer

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
        self._send(Reply(code, {"error": phrase}, {"Connection": "close"}))

    def control(self, method: str, path: str, raw: bytes, query: str = "") -> Reply:
        """Answer a control API request from this handler's client (loopback clients only)."""
        return control_reply(
            self.server.sandbox.spaces, self.client_address[0], method, path, raw, query
        )

    # --- plumbing -----------------------------------------------------------------------

    def _credentials(self) -> tuple[bytes, bytes]:
        """The user (project id) and password (API token) of the Basic header, or empty."""
        header = self.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return b"", b""
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return b"", b""
        user, _, password = decoded.partition(b":")
        return user, password

    def _project(self) -> tuple[SandboxSpace, bool]:
        """The Space the request's credentials name, and whether its token is right.

        A request naming no project served is answered (401) and logged by the first one.
        """
        sandbox = self.server.sandbox
        user, password = self._credentials()
        try:
            project = sandbox.project(user.decode("utf-8"))
        except UnicodeDecodeError:
            project = None
        if project is None:
            return sandbox.space, False
        return project.space, hmac.compare_digest(password, project.api_token.encode("utf-8"))

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

    def _send(self, reply: Reply) -> None:
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
        path, query = split_target(self.path)
        try:
            raw = self._read_body()
        except (_BodyError, ValueError, OSError):
            self.close_connection = True
            self._send(Reply(400, {"error": "Bad Request"}, {"Connection": "close"}))
            return
        if is_control_path(path):
            self._send(self.control(self.command, path, raw, query))
        elif path == "/api" or path.startswith("/api/"):
            self._api(path, query, raw)
        else:
            self._send(Reply(404, {"error": "Not Found"}))

    def _parse_body(self, raw: bytes) -> Any:
        """The JSON value of the body, NO_BODY when there is none, or the parse error."""
        if not raw.strip(b" \t\r\n"):
            return NO_BODY
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            return ValueError(f"not a JSON media type: {media_type}")
        return parse_json(raw)

    # --- the Video REST API -------------------------------------------------------------

    def _api(self, path: str, query: str, raw: bytes) -> None:
        server = self.server
        with server.answering_changed:
            server.answering += 1
        try:
            self._answer_api(path, query, raw)
        finally:
            with server.answering_changed:
                server.answering -= 1
                server.answering_changed.notify_all()

    def _answer_api(self, path: str, query: str, raw: bytes) -> None:
        space, authorised = self._project()
        method = self.command
        received = time.time()
        parsed = self._parse_body(raw)
        logged_body = None if parsed is NO_BODY or isinstance(parsed, Exception) else parsed
        if space.latency:
            time.sleep(space.latency)
        fault = space.take_fault(method, path, after_processing=False)
        if fault is None:
            try:
                reply = self._api_reply(space, authorised, method, path, query, parsed)
            except Exception:  # the sandbox answers 500 like a real server would
                logger.exception("sandbox failed on %s %s", method, path)
                reply = Reply(500, {"error": "Internal Server Error"})
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

    def _api_reply(
        self,
        space: SandboxSpace,
        authorised: bool,
        method: str,
        path: str,
        query: str,
        parsed: Any,
    ) -> Reply:
        normalised = path.rstrip("/") if len(path) > 1 else path
        for pattern, route_methods in _ROUTES:
            match = pattern.match(normalised)
            if match:
                methods = route_methods
                break
        else:
            return Reply(404, {"error": "Not Found"})
        if method not in methods:
            return method_not_allowed(methods)
        if not authorised:
            return Reply(401, {"error": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="api"'})
        args = [unquote(group) for group in match.groups()]
        action = methods[method]
        if isinstance(parsed, Exception):
            if action in STREAM_ACTIONS:
                refused = stream_body_refused()
                return Reply(refused.status, refused.body())
            return Reply(400, {"error": "Bad Request"})
        if action in BODY_REQUIRED and parsed is NO_BODY and action not in STREAM_ACTIONS:
            return Reply(400, {"error": "Bad Request"})
        body = {} if parsed is NO_BODY else parsed
        host = self.headers.get("Host") or self.server.sandbox.url.split("://", 1)[1]
        base_url = f"http://{host}{normalised}"
        try:
            if action in HANDLERS:
                check_parent_id(action, args)
                request = Request(args, base_url, f"http://{host}", query, body)
                status, answer = HANDLERS[action](space, request)
                return Reply(status, answer)
            if action in ACTIVE_SESSION_QUERY:
                errors = check_boolean_query(query, "include_active_session")
                if errors:
                    raise SandboxValidationError(errors)
            if action == "list_conferences":
                return Reply(
                    200, space.with_active_session(space.list_conferences(base_url, query), query)
                )
            if action == "create_conf":
                return Reply(200, space.create_conference(_require_object(body)))
            if action == "get_conf":
                return Reply(200, space.with_active_session(space.get_conference(args[0]), query))
            if action == "update_conf":
                return Reply(200, space.api_update_conference(args[0], _require_object(body)))
            if action == "delete_conf":
                space.delete_conference(args[0])
                return Reply(204)
            if action == "list_tokens":
                return Reply(200, space.list_conference_tokens(args[0], base_url, query))
            if action == "get_token":
                return Reply(200, space.get_conference_token(args[0]))
            if action == "reset_token":
                return Reply(200, space.reset_conference_token(args[0]))
            if action == "list_rooms":
                return Reply(
                    200, space.with_active_session(space.list_rooms(base_url, query), query)
                )
            if action == "create_room":
                return Reply(200, space.create_room(_require_object(body)))
            if action == "get_room":
                return Reply(200, space.with_active_session(space.get_room(args[0]), query))
            if action == "update_room":
                return Reply(200, space.api_update_room(args[0], _require_object(body)))
            if action == "delete_room":
                space.delete_room(args[0])
                return Reply(204)
            if action == "room_token":
                return Reply(200, space.create_room_token(_require_object(body)))
        except SandboxError as exc:
            return Reply(exc.status, exc.body())
        raise AssertionError(action)  # pragma: no cover


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SandboxBadRequest()
    return body


def _fault_reply(fault: Fault) -> Reply:
    status = int(fault.status)
    headers = {}
    if fault.retry_after is not None and status in (429, 503):
        headers["Retry-After"] = str(math.ceil(fault.retry_after))
    return Reply(status, {"error": FAULT_BODIES[status]}, headers)
