"""Keep the local mirror in step with the SignalWire Space: every registered resource, tokens.

Each run holds a single-flight Redis lock, records a SyncRun and reconciles page by page
as the client streams them, with a constant number of bulk queries per page. The sync
writes only with bulk inserts, bulk_update and queryset.update, which fire no model
signals, so nothing it writes is pushed back to SignalWire. The modules: runs (lock and
record), pages (read-ahead and batching), reconcile (the loop), writers (row writes and
audit entries), tokens (conference token refresh), streams (each owner's streams).
"""

from __future__ import annotations

from rooms import registry
from rooms.locks import Flight
from rooms.models import SyncRun
from rooms.selectors import latest_sync_run, latest_sync_summary
from rooms.signalwire.client import SignalWireClient
from rooms.sync.reconcile import MirrorSync, mirror_run
from rooms.sync.runs import COUNTERS, Progress, SyncAborted, locked_run
from rooms.sync.streams import sync_streams
from rooms.sync.tokens import TokenSync

__all__ = [
    "COUNTERS",
    "SyncAborted",
    "latest_sync_run",
    "latest_sync_summary",
    "sync_conference_tokens",
    "sync_conferences",
    "sync_resource",
    "sync_rooms",
    "sync_streams",
    "MirrorSync",
]


def sync_resource(
    *,
    kind: str,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Reconcile the local rows of one registered resource with the Space's listing."""
    resource = registry.resource_for(kind)
    if resource.owned:
        # Listed per owner, not as one Space-wide listing (rooms.sync.streams).
        return sync_streams(client=client, trigger=trigger, progress=progress)
    return mirror_run(resource, client, trigger, page_size, progress)


def sync_conferences(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Reconcile local conferences with the Space's; return the run (skipped if busy)."""
    return mirror_run(registry.CONFERENCE, client, trigger, page_size, progress)


def sync_rooms(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Reconcile local rooms with the Space's; return the run (skipped if busy)."""
    return mirror_run(registry.ROOM, client, trigger, page_size, progress)


def sync_conference_tokens(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    missing_only: bool = False,
    progress: Progress | None = None,
) -> SyncRun:
    """Mirror the moderator and guest tokens of conferences (only those without any, if asked)."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        TokenSync(run, flight, api, progress).run(missing_only=missing_only)

    return locked_run(SyncRun.Kind.TOKENS, trigger, client, work)
