"""A real HTTP server on loopback that answers however a test scripts it: a hostile Space.

The sandbox behaves like SignalWire; this one does what a broken or malicious Space might:
links to other hosts, pagination loops, endless or dripping bodies, huge pages. It records
every request (with whether it carried credentials) and every TCP connection, so a test
can assert what reached it. A second instance serves as a witness that must see nothing.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Answer = Callable[["Handler"], None]
# send_page's default: a page without links.next (the last one).
ABSENT = object()


class Handler(BaseHTTPRequestHandler):
    """One request to the hostile Space; the test's `answer` writes the response."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        return

    @property
    def path_only(self) -> str:
        """The request's path without its query."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        """The request's query parameters."""
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        space = self.server.space
        space.record(self, body)
        try:
            space.answer(self)
        except (BrokenPipeError, ConnectionResetError):
            space.disconnects += 1
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    # --- ways to answer ---

    def send_json(self, body: Any, status: int = 200, headers: dict | None = None) -> None:
        """Answer with a JSON body."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_page(self, data: list[dict], next_link: Any = ABSENT, **extra: Any) -> None:
        """Answer with a list page shaped as the API shapes it (links.next as given)."""
        links = {"self": self.path, "first": self.path_only}
        if next_link is not ABSENT:
            links["next"] = next_link
        self.send_json({"links": links, "data": data, **extra})

    def drip_body(self, *, length: int, every: float) -> None:
        """Send headers at once, then the body one byte every `every` seconds."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()
        self._drip(b" " * length, every)

    def drip_headers(self, *, every: float) -> None:
        """Send the status line, then a header one byte every `every` seconds."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        self._drip(b"X-Slow: " + b"a" * 1000 + b"\r\n\r\n", every)

    def _drip(self, data: bytes, every: float) -> None:
        space = self.server.space
        for index in range(len(data)):
            if space.stopping.wait(every):
                return
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            space.bytes_sent += 1
        self.close_connection = True

    def endless_chunks(self, *, chunk: int = 64 * 1024) -> None:
        """Answer with a chunked body that never ends, until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        space = self.server.space
        piece = f"{chunk:x}\r\n".encode() + b"[" * chunk + b"\r\n"
        self.close_connection = True
        while not space.stopping.is_set():
            self.wfile.write(piece)
            space.bytes_sent += chunk

    def declare_huge_body(self, *, length: int) -> None:
        """Send headers promising `length` bytes, then a trickle and a pause."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(b"[")
        self.wfile.flush()
        self.server.space.stopping.wait(5)
        self.close_connection = True

    def stall(self, seconds: float) -> None:
        """Answer nothing for a while, then a small JSON object."""
        if self.server.space.stopping.wait(seconds):
            return
        self.send_json({"id": "late"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    space: HostileSpace


def _empty_object(handler: Handler) -> None:
    handler.send_json({"id": "witness"})


class HostileSpace:
    """Run a scripted HTTP server on a free loopback port, in threads."""

    def __init__(self, answer: Answer | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer: Answer = answer or _empty_object
        self.scheme = "https" if tls is not None else "http"
        self.requests: list[dict[str, Any]] = []
        self.connections: set[tuple[str, int]] = set()
        self.bytes_sent = 0
        self.disconnects = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.space = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def credentials_received(self) -> int:
        """How many requests carried an Authorization header."""
        return sum(1 for request in self.requests if request["authorization"])

    def record(self, handler: Handler, body: bytes) -> None:
        """Remember a request and the connection it came on."""
        with self._lock:
            self.connections.add(handler.client_address)
            self.requests.append(
                {
                    "method": handler.command,
                    "path": handler.path_only,
                    "query": handler.query,
                    "authorization": handler.headers.get("Authorization") is not None,
                    "body": body,
                    "at": time.monotonic(),
                }
            )

    def start(self) -> HostileSpace:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end any answer still dripping."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """Make a certificate for 127.0.0.1 with openssl; return a server context and the cert."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert
