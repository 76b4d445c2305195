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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from rooms.signalwire.urls import is_loopback
from sandbox.state import (
    Fault,
    SandboxBadRequest,
    SandboxError,
    SandboxSpace,
)

logger = logging.getLogger(__name__)

FAULT_BODIES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    429: "Too Many Requests",
}
CONTROL_PREFIX = "/__sandbox__/"
_SEGMENT = r"([^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"^/api/video/conferences$"), {"GET": "list_conferences", "POST": "create_conf"}),
    (
        re.compile(rf"^/api/video/conferences/{_SEGMENT}$"),
        {"GET": "get_conf", "PUT": "update_conf", "DELETE": "delete_conf"},
    ),
    (re.compile(rf"^/api/video/conferences/{_SEGMENT}/conference_tokens$"), {"GET": "list_tokens"}),
    (re.compile(rf"^/api/video/conference_tokens/{_SEGMENT}$"), {"GET": "get_token"}),
    (re.compile(rf"^/api/video/conference_tokens/{_SEGMENT}/reset$"), {"POST": "reset_token"}),
    (re.compile(r"^/api/video/rooms$"), {"GET": "list_rooms", "POST": "create_room"}),
    (
        re.compile(rf"^/api/video/rooms/{_SEGMENT}$"),
        {"GET": "get_room", "PUT": "update_room", "DELETE": "delete_room"},
    ),
    (re.compile(r"^/api/video/room_tokens$"), {"POST": "room_token"}),
]
_NO_BODY = object()


class _Reply:
    """A response to send: status, JSON body (or None for no body) and extra headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


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
            logger.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    # --- plumbing -----------------------------------------------------------------------

    @property
    def space(self) -> SandboxSpace:
        return self.server.sandbox.space

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status == 204 or reply.body is None:
            payload = b""
            if reply.status != 204:
                self.send_header("Content-Length", "0")
        else:
            payload = json.dumps(reply.body).encode("utf-8")
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
        # end_headers() without its flush, so that headers and body leave in one segment.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(payload)
        self.flush_headers()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(_Reply(400, {"error": "Bad Request"}))
            return
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            self._send(self._control(self.command, path, raw))
        elif path == "/api" or path.startswith("/api/"):
            self._api(path, parts.query, raw)
        else:
            self._send(_Reply(404, {"error": "Not Found"}))

    # --- the Video REST API -------------------------------------------------------------

    def _api(self, path: str, query: str, raw: bytes) -> None:
        space = self.space
        method = self.command
        received = time.time()
        parsed = _parse_json(raw)
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
        if not self._authorised():
            return _Reply(401, {"error": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="api"'})
        normalised = path.rstrip("/") if len(path) > 1 else path
        for pattern, methods in _ROUTES:
            match = pattern.match(normalised)
            if match and method in methods:
                args = [unquote(group) for group in match.groups()]
                break
        else:
            return _Reply(404, {"error": "Not Found"})
        if isinstance(parsed, Exception):
            return _Reply(400, {"error": "Bad Request"})
        body = {} if parsed is _NO_BODY else parsed
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        base_url = f"http://{host}{normalised}"
        space = self.space
        action = methods[method]
        try:
            if action == "list_conferences":
                return _Reply(200, space.list_conferences(base_url, query))
            if action == "create_conf":
                return _Reply(200, space.create_conference(_require_object(body)))
            if action == "get_conf":
                return _Reply(200, space.get_conference(args[0]))
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
                return _Reply(200, space.list_rooms(base_url, query))
            if action == "create_room":
                return _Reply(200, space.create_room(_require_object(body)))
            if action == "get_room":
                return _Reply(200, space.get_room(args[0]))
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

    def _control(self, method: str, path: str, raw: bytes) -> _Reply:
        if not is_loopback(self.client_address[0]):
            return _Reply(403, {"error": "Forbidden"})
        space = self.space
        parsed = _parse_json(raw)
        body: Any = {} if parsed is _NO_BODY else parsed
        if not isinstance(body, dict):
            return _Reply(400, {"error": "the body must be a JSON object"})
        route = (method, path.rstrip("/"))
        try:
            if route == ("POST", "/__sandbox__/reset"):
                space.reset()
                return _Reply(200, space.state())
            if route == ("POST", "/__sandbox__/seed"):
                space.seed(
                    conferences=body.get("conferences", 0),
                    rooms=body.get("rooms", 0),
                    seed=body.get("seed", 0),
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
        except (TypeError, ValueError) as exc:
            return _Reply(400, {"error": str(exc)})
        return _Reply(404, {"error": "Not Found"})


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return _NO_BODY
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return exc


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
