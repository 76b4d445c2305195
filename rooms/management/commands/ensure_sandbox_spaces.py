"""`manage.py ensure_sandbox_spaces`: add the sandbox's extra projects as Spaces for `make run`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.models import Space, environment_space


class Command(BaseCommand):
    """Make sure the portal has one Space per sandbox project (SANDBOX_SPACES)."""

    help = (
        "When the portal runs on the sandbox, add its projects 2..N (SANDBOX_SPACES) as "
        "Spaces named 'Sandbox 2'... The sandbox's own convention names them: project "
        "sandbox-project-K with API token sandbox-token-K (stored encrypted like any token)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--spaces", type=int, default=None, help="Default: SANDBOX_SPACES.")

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["spaces"] if options["spaces"] is not None else settings.SANDBOX_SPACES
        if count < 1:
            raise CommandError("SANDBOX_SPACES must be at least 1.")
        if not settings.SIGNALWIRE_USES_SANDBOX:
            self.stdout.write("A SignalWire Space is configured: no sandbox Spaces added.")
            return
        first = environment_space()
        for number in range(2, count + 1):
            name = f"{first.name} {number}"
            space, made = Space.objects.get_or_create(
                name=name,
                defaults={
                    "space_url": settings.SIGNALWIRE_SPACE_URL,
                    "project_id": f"sandbox-project-{number}",
                },
            )
            if made:
                space.set_token(f"sandbox-token-{number}")
                space.save(update_fields=["token_encrypted"])
                self.stdout.write(f"Added the Space {name!r} (sandbox project {number}).")
            elif space.space_url != settings.SIGNALWIRE_SPACE_URL:
                # The sandbox moved to another port (SIGNALWIRE_SANDBOX_PORT).
                space.space_url = settings.SIGNALWIRE_SPACE_URL
                space.save(update_fields=["space_url"])
