"""Real receivers of alert messages: an SMTP server and an HTTP webhook receiver on loopback."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    """A loopback TCP port free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Inbox:
    """Every mail the SMTP server accepted: (sender, recipients, parsed message)."""

    host: str
    port: int
    mails: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.mails.clear()

    def received(self) -> list:
        with self.lock:
            return list(self.mails)


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port for the whole session."""
    from aiosmtpd.controller import Controller

    inbox = Inbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            parsed = message_from_bytes(envelope.original_content, policy=policy.default)
            with inbox.lock:
                inbox.mails.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
            return "250 Message accepted"

    controller = Controller(Handler(), hostname=inbox.host, port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_inbox(smtp_server, settings):
    """The session's SMTP server, emptied, with this process's email pointed at it."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


@dataclass
class Receiver:
    """An HTTP server on loopback that records each POST and answers with `statuses` first."""

    url: str = ""
    posts: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list:
        with self.lock:
            return list(self.posts)


@pytest.fixture
def webhook_receiver():
    """A real HTTP receiver of webhooks for one test: {headers, body} per POST."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.posts.append({"headers": dict(self.headers), "body": body,
                                       "path": self.path})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
