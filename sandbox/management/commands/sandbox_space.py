"""Run the sandbox Space (an in-memory SignalWire Video API) until Ctrl-C or SIGTERM."""

import re
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.signalwire.urls import is_loopback
from sandbox import SandboxServer, SandboxSpace

MAX_PROJECTS = 50
# The sandbox's own made-up tokens: printing one tells nothing; any other is never printed.
SANDBOX_TOKEN = re.compile(r"sandbox-token(-[0-9]+)?")


def project_credentials(index: int) -> tuple[str, str]:
    """The project id and API token of the index-th project (2 and up) the command serves."""
    return f"sandbox-project-{index}", f"sandbox-token-{index}"


class Command(BaseCommand):
    help = "Serve the sandbox Space: SignalWire's Video REST API, in memory, on loopback."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command-line options."""
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="port to listen on (default SIGNALWIRE_SANDBOX_PORT; 0 picks a free one)",
        )
        parser.add_argument("--project-id", default=None, help="default SIGNALWIRE_PROJECT_ID")
        parser.add_argument("--api-token", default=None, help="default SIGNALWIRE_API_TOKEN")
        parser.add_argument(
            "--projects",
            type=int,
            default=None,
            metavar="N",
            help=(
                "projects to serve, each its own Space (default SANDBOX_SPACES, else 1); "
                "project k>=2 is sandbox-project-k with token sandbox-token-k"
            ),
        )
        parser.add_argument("--seed-conferences", type=int, default=0, metavar="N")
        parser.add_argument("--seed-rooms", type=int, default=0, metavar="N")
        parser.add_argument(
            "--seed-sessions",
            type=int,
            default=0,
            metavar="N",
            help="past sessions (with members, recordings and logs) over the last 90 days",
        )
        parser.add_argument(
            "--live-sessions",
            type=int,
            default=0,
            metavar="K",
            help="sessions left in progress in K of the seeded rooms, two members each",
        )
        parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed data RNG seed")
        parser.add_argument(
            "--allow-remote",
            action="store_true",
            help="allow binding an address other machines can reach",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Start the server, seed it, and serve until interrupted."""
        host = options["host"]
        if not is_loopback(host) and not options["allow_remote"]:
            raise CommandError(
                f"refusing to bind {host}: the sandbox is a local tool; "
                "use a loopback address or pass --allow-remote"
            )
        port = options["port"]
        if port is None:
            port = getattr(settings, "SIGNALWIRE_SANDBOX_PORT", 8765)
        if not 0 <= port <= 65535:
            raise CommandError(f"port {port} is out of range")
        project_id = options["project_id"] or getattr(settings, "SIGNALWIRE_PROJECT_ID", "")
        api_token = options["api_token"] or getattr(settings, "SIGNALWIRE_API_TOKEN", "")
        if not project_id or not api_token:
            raise CommandError(
                "set a project id and an API token (--project-id/--api-token or "
                "SIGNALWIRE_PROJECT_ID/SIGNALWIRE_API_TOKEN)"
            )
        seed_options = ("seed_conferences", "seed_rooms", "seed_sessions", "live_sessions")
        if any(options[name] < 0 for name in seed_options):
            raise CommandError("seed counts must not be negative")
        projects = options["projects"]
        if projects is None:
            projects = getattr(settings, "SANDBOX_SPACES", 1)
        if not 1 <= projects <= MAX_PROJECTS:
            raise CommandError(f"--projects must be between 1 and {MAX_PROJECTS}")

        server = SandboxServer(host=host, port=port, project_id=project_id, api_token=api_token)
        try:
            for index in range(2, projects + 1):
                server.add_project(*project_credentials(index))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
        stop = threading.Event()
        previous = self._install_handlers(stop)
        try:
            for variant, project in enumerate(server.projects.values()):
                project.space.seed(
                    conferences=options["seed_conferences"],
                    rooms=options["seed_rooms"],
                    seed=options["seed"],
                    sessions=options["seed_sessions"],
                    variant=variant,
                )
                self._start_live(project.space, options["live_sessions"])
            for project in server.projects.values():
                counts = project.space.state()
                shown = (
                    project.api_token
                    if SANDBOX_TOKEN.fullmatch(project.api_token)
                    else "as given, not shown"
                )
                self.stdout.write(
                    f"Sandbox Space serving at {server.url} (project {project.project_id}, "
                    f"token {shown}): {counts['conferences']} conferences, "
                    f"{counts['rooms']} rooms, {counts['room_sessions']} sessions "
                    f"({counts['live_sessions']} live)."
                )
            self.stdout.write("Press Ctrl-C to stop.")
            self.stdout.flush()
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            self._restore_handlers(previous)
        self.stdout.write("Sandbox Space stopped.")

    @staticmethod
    def _start_live(space: SandboxSpace, count: int) -> None:
        names = sorted(room["name"] for room in space.rooms.values())[:count]
        if len(names) < count:
            raise CommandError(f"--live-sessions {count} needs as many seeded rooms")
        for name in names:
            space.start_session(room_name=name, members=["Ada Lovelace", "Alan Turing"])

    @staticmethod
    def _install_handlers(stop: threading.Event) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous

        def handler(signum: int, frame: Any) -> None:
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
        return previous

    @staticmethod
    def _restore_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
