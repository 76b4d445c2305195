"""`manage.py sync_signalwire`: run a sync with SignalWire in the foreground and report it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms import sync
from rooms.models import Space, SyncRun, environment_space
from rooms.signalwire.errors import SignalWireError

Outcome = SyncRun.Outcome


class Command(BaseCommand):
    """Sync conferences, rooms and conference tokens now; exit non-zero if any run fails."""

    help = (
        "Reconcile the local mirror with the SignalWire Spaces now (every Space, or the ones "
        "named with --space). With no option, syncs conferences, rooms and the tokens of "
        "conferences that have none yet. It skips "
        "Django's system checks (run `manage.py check`, as a deployment does) so a "
        "frequent cron run starts quicker."
    )
    # The system checks cost ~0.06 s of a run that may only confirm nothing changed; a
    # deployment runs `manage.py check --deploy`, and the checks a sync depends on (the
    # database, Redis) fail the run loudly anyway.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--conferences", action="store_true", help="Sync conferences.")
        parser.add_argument("--rooms", action="store_true", help="Sync rooms.")
        parser.add_argument(
            "--tokens",
            action="store_true",
            help="Fetch the tokens of conferences that have none yet.",
        )
        parser.add_argument(
            "--refresh-tokens",
            action="store_true",
            help="Refresh the tokens of every conference (slower: one request each).",
        )
        parser.add_argument(
            "--streams",
            action="store_true",
            help="List the streams of every conference and room (one request each).",
        )
        parser.add_argument(
            "--sessions",
            action="store_true",
            help="Refresh live room sessions, then mirror new and changed past ones.",
        )
        parser.add_argument(
            "--recordings",
            action="store_true",
            help="Mirror new and changed room recordings; refresh unfinished ones.",
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="With --recordings or --logs: read the whole listing and mark what SignalWire "
            "no longer has as deleted remotely.",
        )
        parser.add_argument(
            "--logs",
            action="store_true",
            help="Mirror the video logs made since the newest one mirrored, discarded ones too.",
        )
        parser.add_argument(
            "--page-size", type=int, default=None, help="Rows per listed page (1..1000)."
        )
        parser.add_argument(
            "--space", action="append", default=[], metavar="NAME",
            help="Sync only this Space (by its name in the portal); repeat for several.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = [
            name
            for name in (
                "conferences", "rooms", "tokens", "refresh_tokens", "streams", "sessions",
                "recordings", "logs",
            )
            if options[name]
        ]
        if options["full"] and not {"recordings", "logs"} & set(chosen):
            raise CommandError("--full goes with --recordings or --logs (the others are full).")
        if not chosen:
            chosen = ["conferences", "rooms", "tokens"]
        page_size = options["page_size"]
        spaces = self._spaces(options["space"])
        failures = []
        if "sessions" in chosen:  # the live refresh first: it closes sessions that ended
            chosen[chosen.index("sessions") : chosen.index("sessions") + 1] = [
                "live_sessions",
                "sessions",
            ]
        for space, name in ((space, name) for space in spaces for name in chosen):
            label = name.replace("_", " ")
            if len(spaces) > 1:
                label = f"{label} of {space.name}"
            self.stdout.write(f"Syncing {label}...")
            try:
                run = self._sync(name, page_size, space, full=options["full"])
            except (SignalWireError, sync.SyncAborted) as exc:
                failures.append(f"{label}: {exc}")
                self.stderr.write(self.style.ERROR(f"  {label} failed: {exc}"))
                continue
            self.stdout.write(self._summary(run))
            if run.outcome == Outcome.SKIPPED:
                failures.append(f"{label}: another sync of {label} is running")
            elif run.outcome != Outcome.SUCCEEDED:
                failures.append(f"{label}: {run.error}")
        if failures:
            raise CommandError("Sync did not complete: " + "; ".join(failures))
        self.stdout.write(self.style.SUCCESS("Sync complete."))

    def _spaces(self, names: list[str]) -> list[Space]:
        """The Spaces to sync: those named, else every one (the environment's first)."""
        first = environment_space()
        every = [first, *Space.objects.exclude(pk=first.pk).order_by("pk")]
        if not names:
            return every
        by_name = {space.name: space for space in every}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name))
            raise CommandError(f"No Space named {', '.join(unknown)}; the Spaces: {known}.")
        return [by_name[name] for name in dict.fromkeys(names)]

    def _sync(
        self, name: str, page_size: int | None, space: Space, *, full: bool = False
    ) -> SyncRun:
        """Run one sync service in one Space with progress printed after each page."""
        common: dict[str, Any] = {
            "trigger": "command", "progress": self._progress, "space": space,
        }
        if name == "conferences":
            return sync.sync_conferences(page_size=page_size, **common)
        if name == "rooms":
            return sync.sync_rooms(page_size=page_size, **common)
        if name == "streams":
            return sync.sync_streams(**common)
        if name == "live_sessions":
            return sync.sessions_refresh_live(**common)
        if name == "sessions":
            return sync.sessions_sync_history(page_size=page_size, **common)
        if name == "recordings":
            return sync.recordings_sync(page_size=page_size, full=full, **common)
        if name == "logs":
            return sync.logs_sync(page_size=page_size, full=full, **common)
        return sync.sync_conference_tokens(missing_only=name == "tokens", **common)

    def _progress(self, run: SyncRun) -> None:
        self.stdout.write(
            f"  page {run.pages}: {run.seen} seen, {run.created} created, "
            f"{run.updated} updated, {run.unchanged} unchanged"
        )

    def _summary(self, run: SyncRun) -> str:
        counts = ", ".join(
            f"{name.replace('_', ' ')} {getattr(run, name)}" for name in sync.COUNTERS
        )
        text = f"  {run.get_kind_display()}: {run.get_outcome_display()} ({counts})"
        if run.error:
            text += "\n  " + run.error.replace("\n", "\n  ")
        return text
