"""`manage.py rotate_space_tokens`: re-encrypt every stored Space API token with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rooms import space_tokens
from rooms.models import Space


class Command(BaseCommand):
    """Re-encrypt stored tokens with the first of SPACE_TOKEN_KEYS, so older keys can go."""

    help = (
        "Re-encrypt the API token of every Space that stores one with the newest key "
        "(the first of SPACE_TOKEN_KEYS). Run it after putting a new key in front; then "
        "the older keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problem = space_tokens.key_problem()
        if problem:
            raise CommandError(problem)
        rotated: list[str] = []
        unreadable: list[str] = []
        for space in Space.objects.exclude(token_encrypted="").order_by("name"):
            try:
                space.token_encrypted = space_tokens.rotate(space.token_encrypted)
            except space_tokens.TokenUnreadable:
                unreadable.append(space.name)
                continue
            space.save(update_fields=["token_encrypted"])
            rotated.append(space.name)
        self.stdout.write(
            f"Re-encrypted the API token of {len(rotated)} Space(s) with the newest key."
        )
        if unreadable:
            raise CommandError(
                "These Spaces' tokens cannot be decrypted with any key in SPACE_TOKEN_KEYS "
                f"(a key is missing), left as they were: {', '.join(unreadable)}."
            )
