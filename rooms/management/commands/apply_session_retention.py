"""`manage.py apply_session_retention [--dry-run] [--days N]`: remove old session history."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from rooms.services import sessions


class Command(BaseCommand):
    """Apply SESSION_RETENTION_DAYS now: count (dry run) or remove the old sessions."""

    help = (
        "Remove the mirrored room sessions (and their members) that started more than "
        "SESSION_RETENTION_DAYS days ago, in batches, as one run visible in admin. The daily "
        "usage rollup keeps those days' figures; sessions in progress and recordings are "
        "never touched. 0 days (the default) keeps everything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be removed; change nothing."
        )
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Use this many days instead of SESSION_RETENTION_DAYS (for this run only).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and sessions.retention_days_problem(days):
            raise CommandError(
                "--days must be 0 (keep everything) or a positive number of days, at most "
                f"{sessions.RETENTION_DAYS_MAX} (100 years)."
            )
        try:
            result = sessions.sessions_apply_retention(dry_run=options["dry_run"], days=days)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if result.days == 0:
            self.stdout.write(
                "Session retention is off (SESSION_RETENTION_DAYS=0): every session is kept. "
                "Nothing to do."
            )
            return
        assert result.cutoff is not None
        cutoff = f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
        if result.dry_run:
            self.stdout.write(
                f"Dry run: {result.sessions} session(s) that started before {cutoff} (older "
                f"than {result.days} days) and their {result.members} member row(s) would be "
                "removed. Nothing was changed."
            )
            return
        if result.skipped_busy:
            raise CommandError("Another session retention run is going on; nothing was done.")
        self.stdout.write(
            f"Session retention (older than {result.days} days, started before {cutoff}): "
            f"removed {result.sessions} session(s) and {result.members} member row(s) in "
            f"{result.batches} batch(es). The usage rollup keeps those days' figures."
        )
        if result.run is not None:
            url = reverse("admin:rooms_actionrun_change", args=[result.run.pk])
            self.stdout.write(f"Run {result.run.run_id} recorded; see it in admin at {url}")
