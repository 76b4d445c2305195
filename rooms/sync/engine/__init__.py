"""The mirror engine: one class per shape of listing the Video API has.

FullListingSync reconciles a whole listing (conferences, rooms): new, changed, deleted
remotely, restored. NewestFirstSync reads a newest-first listing until a page holds rows
already mirrored unchanged, and reads again what is unfinished (sessions, recordings,
logs). UnderParentSync reads the listing under each parent row, a batch of parents per
transaction (tokens, streams). Each resource's sync (rooms.sync.<feature>) subclasses
one of them with typed methods; its registry entry (rooms.registry) gives the model, the
mapping, the client calls, the audit choice and the run kind. Every run holds its kind's
single-flight lock and records a SyncRun (rooms.sync.runs); every page or batch is
written with a constant number of queries; nothing is written for an unchanged row.
"""

from rooms.sync.engine.full import FullListingSync, full_listing_run, rows_with_digest
from rooms.sync.engine.newest import NewestFirstSync, mark_deleted, newest_first_run
from rooms.sync.engine.parents import UnderParentSync, live_parents

__all__ = [
    "FullListingSync",
    "NewestFirstSync",
    "UnderParentSync",
    "full_listing_run",
    "live_parents",
    "mark_deleted",
    "newest_first_run",
    "rows_with_digest",
]
