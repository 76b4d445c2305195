"""The sync's bulk lookups of the mirror: plain rows and ids, no model instances."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, models

from rooms.models import RemoteIntent


def mirror_rows_by_remote_id(
    model: type[models.Model], remote_ids: Iterable[str], space_id: int
) -> dict[str, tuple[int, str, object]]:
    """Read (pk, sync_state, remote_updated_at) of a Space's known rows among some remote ids."""
    rows = (
        model._default_manager.filter(space_id=space_id, remote_id__in=list(remote_ids))
        .order_by()
        .values_list("remote_id", "pk", "sync_state", "remote_updated_at")
    )
    return {remote_id: (pk, state, updated) for remote_id, pk, state, updated in rows}


def markable_remote_ids(
    model: type[models.Model], states: Iterable[str], space_id: int
) -> set[str]:
    """Return the remote ids of a Space's mirrored rows in the given states, as plain strings.

    The sync walks every mirrored row on every run: plain rows from the covering
    (space, sync_state, remote_id) index and set arithmetic, no model instances.
    """
    candidates = (
        model._default_manager.filter(
            space_id=space_id, remote_id__isnull=False, sync_state__in=list(states)
        )
        .order_by()
        .values_list("remote_id")
    )
    sql, params = candidates.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {remote_id for (remote_id,) in cursor.fetchall()}


def names_awaiting_create(kind: str, space_id: int) -> set[str]:
    """Return the names of a kind in a Space whose create was sent but never stored."""
    return set(
        RemoteIntent.objects.filter(
            space_id=space_id, kind=kind, action=RemoteIntent.Action.CREATE,
            object_pk__isnull=True,
        ).values_list("name", flat=True)
    )
