"""`manage.py rebuild_usage`: recompute the daily usage rollup from the mirrored rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.services import sessions as sessions_retention
from rooms.services.usage import rebuild_usage


class Command(BaseCommand):
    """Rebuild the usage rollup, a batch of days per transaction."""

    help = (
        "Recompute the daily usage rollup (sessions, member minutes, estimated and billed "
        "cost per day and room) from the mirrored sessions and video logs, then its day "
        "totals and month-and-room totals from those rows. Only days that still have "
        "mirrored rows are rewritten; days older than SESSION_RETENTION_DAYS keep the "
        "figures the rollup has for them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-days", type=int, default=7, help="Days recomputed per transaction."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_days"] < 1:
            raise CommandError("--batch-days must be at least 1.")
        keep_before = sessions_retention.first_kept_day()
        result = rebuild_usage(batch_days=options["batch_days"], keep_before=keep_before)
        if not result.batches:
            self.stdout.write("No mirrored sessions or video logs: no day of rooms to rebuild.")
        else:
            self.stdout.write(
                f"Rebuilt the usage rollup in {result.batches} batch(es): "
                f"{result.session_days} day(s) of sessions and {result.billed_days} day(s) of "
                f"video logs, {result.rows} day-and-room row(s), "
                f"{result.days[0]} to {result.days[-1]} (UTC)."
                if result.days
                else f"Looked at {result.batches} batch(es) of days; none had mirrored rows."
            )
        if result.months:
            self.stdout.write(
                f"Summed the day totals and month-and-room totals afresh for {result.months} "
                "month(s)."
            )
        if keep_before is not None:
            self.stdout.write(
                f"Days before {keep_before} (SESSION_RETENTION_DAYS) were left as they are: "
                "their sessions are removed by retention and the rollup keeps their figures."
            )
