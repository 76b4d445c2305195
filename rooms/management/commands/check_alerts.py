"""`manage.py check_alerts`: evaluate the alert conditions now and say what changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rooms.services import alerts


class Command(BaseCommand):
    """Open, remind and resolve alerts as the periodic check does; the worker sends messages."""

    help = (
        "Check every alert condition now (pushes refused, changes pending too long, syncs "
        "failing, worker or beat silent, runs with failures, lockouts), open or resolve "
        "alerts, and list the open ones. Messages are sent by the worker."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = alerts.check_alerts()
        for verb, pairs in (("opened", result.opened), ("reminded", result.reminded),
                            ("resolved", result.resolved)):
            for kind, subject in pairs:
                self.stdout.write(f"{verb}: {kind} {subject}")
        still = alerts.open_alerts()
        self.stdout.write(f"{len(still)} open alert(s)")
        for alert in still:
            self.stdout.write(f"  {alert.get_kind_display()} ({alert.subject}) x{alert.count}: "
                              f"{alert.summary}")
