"""The sandbox Space over HTTP: a server for SignalWire's Video REST API and its control API.

It binds a socket and serves from a daemon thread; sandbox.handler answers each request.
One server serves one or more projects, each with its own credentials and SandboxSpace.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.handler import SandboxHTTPServer
from sandbox.state import SandboxSpace


@dataclass(frozen=True)
class SandboxProject:
    """One project the server answers for: its credentials and its Space."""

    project_id: str
    api_token: str
    space: SandboxSpace


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
        self._projects_lock = threading.Lock()
        self._projects: dict[str, SandboxProject] = {}
        self.space = self.add_project(project_id, api_token, space=space)
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<SandboxServer {self.url if self._httpd else 'stopped'}>"

    def add_project(
        self, project_id: str, api_token: str, *, space: SandboxSpace | None = None
    ) -> SandboxSpace:
        """Serve another project (its own credentials and data); return its Space."""
        with self._projects_lock:
            if project_id in self._projects:
                raise ValueError(f"project {project_id} is already served")
            if space is None:
                space = SandboxSpace(project_id=project_id)
            # Copy on write: the handler threads read the mapping without the lock.
            self._projects = {
                **self._projects,
                project_id: SandboxProject(project_id, api_token, space),
            }
        return space

    @property
    def projects(self) -> Mapping[str, SandboxProject]:
        """Every project served, by project id, the first project first."""
        return dict(self._projects)

    @property
    def spaces(self) -> Mapping[str, SandboxSpace]:
        """Every project's Space, by project id, the first project first."""
        return {pid: project.space for pid, project in self._projects.items()}

    def project(self, project_id: str) -> SandboxProject | None:
        """The project with this id, or None."""
        return self._projects.get(project_id)

    def start(self) -> SandboxServer:
        """Bind the socket and serve in a daemon thread; return self."""
        if self._httpd is not None:
            return self
        self._httpd = SandboxHTTPServer((self.host, self.port), self)
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

    def wait_until_answered(self, timeout: float = 60.0) -> bool:
        """Wait until every API request received so far, to any project, has its answer
        (tests call it before they empty a Space, so a slow request never lands in the next
        test)."""
        return self._httpd is None or self._httpd.wait_until_answered(timeout)

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


__all__ = ["SandboxProject", "SandboxServer"]
