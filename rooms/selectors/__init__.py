"""Reads that are more than a filter, one module per feature; nothing here writes.

mirror: the sync's bulk lookups of mirrored rows; runs: sync run summaries; usage: minutes,
sessions and cost from the mirrored sessions; dashboard: the admin index's figures. The
package re-exports, by name, what the sync engine reads (mirror and runs).
"""

from rooms.selectors.mirror import (
    markable_remote_ids,
    mirror_rows_by_remote_id,
    names_awaiting_create,
)
from rooms.selectors.runs import latest_sync_run, latest_sync_summary

__all__ = [
    "latest_sync_run",
    "latest_sync_summary",
    "markable_remote_ids",
    "mirror_rows_by_remote_id",
    "names_awaiting_create",
]
