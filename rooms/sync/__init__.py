"""Keep the local mirror in step with the SignalWire Space: one engine for every resource.

Each run holds a single-flight Redis lock, records a SyncRun and writes page by page (or
parent batch by batch) with a constant number of bulk queries. The sync writes only with
bulk inserts, bulk_update and queryset.update, which fire no model signals, so nothing it
writes is pushed back to SignalWire. The modules: engine (the three shapes of listing),
runs (lock and record), pages (read-ahead and batching), writers (row writes and audit
entries of a full listing), and one module per resource built on the engine: tokens,
streams, sessions (with members), recordings, logs. Conferences and rooms need none: the
full-listing shape with their registry entry is all of their sync.
"""

from __future__ import annotations

from rooms import registry
from rooms.models import Space, SyncRun
from rooms.selectors import latest_sync_run, latest_sync_summary
from rooms.signalwire.client import SignalWireClient
from rooms.sync.engine import FullListingSync, full_listing_run
from rooms.sync.logs import logs_sync
from rooms.sync.recordings import recordings_sync
from rooms.sync.runs import COUNTERS, Progress, SyncAborted
from rooms.sync.sessions import sessions_refresh_live, sessions_sync_history
from rooms.sync.streams import sync_streams
from rooms.sync.tokens import sync_conference_tokens

__all__ = [
    "COUNTERS",
    "FullListingSync",
    "SyncAborted",
    "latest_sync_run",
    "latest_sync_summary",
    "logs_sync",
    "recordings_sync",
    "sessions_refresh_live",
    "sessions_sync_history",
    "sync_conference_tokens",
    "sync_conferences",
    "sync_resource",
    "sync_rooms",
    "sync_streams",
]


def sync_resource(
    *,
    kind: str,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Sync one registered resource the portal edits (its listing, or under its owners)."""
    resource = registry.resource_for(kind)
    if not isinstance(resource, registry.NamedResource):
        return sync_streams(client=client, trigger=trigger, progress=progress, space=space)
    return full_listing_run(resource, client, trigger, page_size, progress, space)


def sync_conferences(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Reconcile a Space's local conferences with its listing; return the run (skipped if busy)."""
    return full_listing_run(registry.CONFERENCE, client, trigger, page_size, progress, space)


def sync_rooms(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Reconcile a Space's local rooms with its listing; return the run (skipped if busy)."""
    return full_listing_run(registry.ROOM, client, trigger, page_size, progress, space)
