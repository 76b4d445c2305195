"""Writes that reach SignalWire: remote first, then the local mirror, one short transaction each.

Admin, hooks, tasks and commands call these functions; nothing else both calls the client
and writes the mirrored models. No transaction is ever open while SignalWire is asked:
an edit first records its intent (rooms.models.RemoteIntent) in a short transaction, then
calls SignalWire with none open, then stores the answer and drops the intent in a second
short transaction. An intent left behind is replayed by the next push under its actor.
Each service opens an audit context so the django-auditlog entries its saves write name
the actor and the source, and keeps its own saves quiet for the hooks of rooms.signals.

The package re-exports, by name, the shared core (common: audit context, row lock, client,
error mapping, landing an answer, conference tokens), the conference and room edits
(mirror: what a person or script asks for) and the pushes (pushes: what the tasks of
rooms.tasks.push run). Each other feature is its own module, imported by its path:
streams, tokens (conference tokens and room join tokens), recordings, bulk (admin actions
on many rows, bulk edit) and restore (putting a row back from its change log). Every
function reads its resource from rooms.registry. docs/architecture.md draws the layers.
"""

from rooms.services.common import (
    PUSH_ROUNDS,
    TASK_LOCK_WAIT,
    RowBusyError,
    acting,
    api_client,
    form_error,
    intents_replay,
    mirror_for,
    push_enqueue,
    row_lock,
    store_tokens,
)
from rooms.services.mirror import (
    conference_create,
    conference_delete,
    conference_update,
    mirror_mark_pending,
    mirror_refresh,
    room_create,
    room_delete,
    room_update,
)
from rooms.services.pushes import (
    conference_push,
    conference_push_delete,
    mirror_delete,
    mirror_push,
    mirror_push_delete,
    pending_rows,
    push_mark_failed,
    push_note_waiting,
    remote_delete,
    remote_delete_enqueue,
    room_push,
    room_push_delete,
)

__all__ = [
    "PUSH_ROUNDS",
    "TASK_LOCK_WAIT",
    "RowBusyError",
    "acting",
    "api_client",
    "form_error",
    "store_tokens",
    "conference_create",
    "conference_delete",
    "conference_push",
    "conference_push_delete",
    "conference_update",
    "intents_replay",
    "mirror_delete",
    "mirror_for",
    "mirror_mark_pending",
    "mirror_push",
    "mirror_push_delete",
    "mirror_refresh",
    "pending_rows",
    "push_enqueue",
    "push_mark_failed",
    "push_note_waiting",
    "remote_delete",
    "remote_delete_enqueue",
    "room_create",
    "room_delete",
    "room_push",
    "room_push_delete",
    "room_update",
    "row_lock",
]
