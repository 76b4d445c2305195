"""`manage.py apply_recording_retention [--dry-run]`: delete recordings older than the policy."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from rooms.models import AuditEntry
from rooms.selectors.recordings import ended_at, size_text
from rooms.services import recordings


class Command(BaseCommand):
    """Apply RECORDING_RETENTION_DAYS now: list (dry run) or delete the old completed ones."""

    help = (
        "Delete the completed recordings that ended more than RECORDING_RETENTION_DAYS days "
        "ago, in SignalWire first, as one run visible in admin. Recordings still recording, "
        "paused or processing are never touched. 0 days (the default) keeps everything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be deleted; change nothing here or in SignalWire.",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Use this many days instead of RECORDING_RETENTION_DAYS (for this run only).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and recordings.retention_days_problem(days):
            raise CommandError(
                "--days must be 0 (keep everything) or a positive number of days, at most "
                f"{recordings.RETENTION_DAYS_MAX} (100 years)."
            )
        try:
            result = recordings.recordings_apply_retention(
                dry_run=options["dry_run"], days=days, source=AuditEntry.Source.COMMAND
            )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if result.days == 0:
            self.stdout.write(
                "Recording retention is off (RECORDING_RETENTION_DAYS=0): every recording is "
                "kept. Nothing to do."
            )
            return
        assert result.cutoff is not None
        cutoff = f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
        would = result.would_free
        if result.dry_run:
            self.stdout.write(
                f"Dry run: {would.count} completed recording(s) ended before {cutoff} "
                f"(older than {result.days} days) would be deleted, freeing "
                f"{size_text(would.size)} and ${would.cost:.4f}. Nothing was changed."
            )
            for recording in result.candidates:
                self._line(recording)
            return
        if result.skipped_busy:
            raise CommandError("Another retention run is going on; nothing was done.")
        freed = result.freed
        self.stdout.write(
            f"Retention (older than {result.days} days, ended before {cutoff}): "
            f"{result.counts['deleted'] + result.counts['already_gone']} deleted, "
            f"{result.counts['pending_delete']} pending delete (SignalWire unreachable; a "
            f"background task finishes them), {result.counts['failed']} failed. Freed "
            f"{size_text(freed.size)} and ${freed.cost:.4f}."
        )
        for recording in result.candidates:
            self._line(recording, result.outcomes.get(recording.pk, ""))
        for failure in result.failures:
            self.stderr.write(f"  failed: {failure['name']}: {failure['message']}")
        if result.run is not None:
            url = reverse("admin:rooms_actionrun_change", args=[result.run.pk])
            self.stdout.write(f"Run {result.run.run_id} recorded; see it in admin at {url}")
        if result.counts["failed"]:
            raise CommandError(f"{result.counts['failed']} recording(s) could not be deleted.")

    def _line(self, recording: Any, outcome: str = "") -> None:
        ended = ended_at(recording)
        when = f"{ended:%Y-%m-%d %H:%M}" if ended else "unknown"
        cost = recording.cost_in_dollars or 0
        text = (
            f"  {recording.remote_id}  {recording.room_name or '-':<24} ended {when}  "
            f"{size_text(recording.size_in_bytes):>10}  ${cost:.4f}"
        )
        self.stdout.write(f"{text}  {outcome.replace('_', ' ')}" if outcome else text)
