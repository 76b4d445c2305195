"""Shape three: the listing under each parent row, a batch of parents per transaction."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.utils import timezone

from rooms.locks import Flight
from rooms.models import SyncRun, SyncState
from rooms.registry import Mirror
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError
from rooms.signalwire.payloads import listed_row_problem, shown_id
from rooms.sync.pages import WRITE_CHUNK, wide_batches
from rooms.sync.runs import LOST_LOCK, Progress, SyncAborted, note_error, save_run

# Parents whose listings one transaction reconciles.
PARENT_BATCH = 100


def live_parents(model: type[models.Model], space_id: int) -> models.QuerySet[Any]:
    """A Space's rows of a parent model that SignalWire has (not deleted or being deleted)."""
    return model._default_manager.filter(space_id=space_id, remote_id__isnull=False).exclude(
        sync_state__in=(SyncState.DELETED_REMOTELY, SyncState.PENDING_DELETE)
    )


class UnderParentSync(ABC):
    """Shape three: the listing under each parent row, read a batch of parents at a time.

    Each parent's listing is read with no transaction open; then the batch is written in
    one transaction with a constant number of bulk queries. A parent SignalWire no longer
    has is an error of the run and changes nothing under it.
    """

    mirror: ClassVar[Mirror[Any]]
    noun: ClassVar[str]
    """How an error names one listed row ("Token", "Stream")."""

    def __init__(
        self, run: SyncRun, flight: Flight, client: SignalWireClient, progress: Progress | None
    ) -> None:
        self.run_record = run
        self.space_id: int = run.space.pk
        self.flight = flight
        self.client = client
        self.progress = progress
        self.reasons: list[str] = []
        self.refuses_nul = connection.vendor == "postgresql"
        # Listed rows that could not be stored: never dropped, whatever the batch.
        self.refused: set[str] = set()

    @abstractmethod
    def parents(self) -> Iterator[tuple[str, models.QuerySet[Any]]]:
        """Each kind of parent (as the listing names it) with the parent rows to walk."""

    @abstractmethod
    def fetch(self, kind: str, remote_id: str) -> list[dict[str, Any]]:
        """The listing under one parent."""

    @abstractmethod
    def write(
        self,
        kind: str,
        names: dict[int, str],
        fetched: dict[int, list[dict[str, Any]]],
        asked: dict[int, datetime],
    ) -> None:
        """Reconcile a batch of parents' listings with their rows (inside a transaction)."""

    def unreadable(self, parent_name: str, exc: Exception) -> str:
        """The error of a listed row the mapping cannot read."""
        return f"A {self.noun.lower()} is not readable ({type(exc).__name__})."

    def too_long(self, values: dict[str, Any]) -> str | None:
        """Why a mapped row does not fit its columns, else None."""
        return None

    def error(self, reason: str) -> None:
        note_error(self.run_record, self.reasons, reason)

    def run(self) -> None:
        """Walk the parents kind by kind in pk order, a batch at a time."""
        ContentType.objects.get_for_model(self.mirror.model)  # cached, not in a batch's queries
        with wide_batches():
            for kind, parents in self.parents():
                last_pk = 0
                while True:
                    batch = list(
                        parents.filter(pk__gt=last_pk)
                        .order_by("pk")
                        .values_list("pk", "remote_id", "name")[:PARENT_BATCH]
                    )
                    if not batch:
                        break
                    last_pk = batch[-1][0]
                    self.apply_batch(kind, batch)

    def apply_batch(self, kind: str, batch: list[tuple[int, str | None, str]]) -> None:
        """Read each parent's listing (no transaction open), then write the batch at once."""
        fetched: dict[int, list[dict[str, Any]]] = {}
        asked: dict[int, datetime] = {}
        for pk, remote_id, name in batch:
            if self.flight.lost:
                raise SyncAborted(LOST_LOCK)
            try:
                asked[pk] = timezone.now()
                fetched[pk] = self.fetch(kind, remote_id or "")
            except NotFoundError:
                self.error(f"{name}: SignalWire no longer has {kind} {remote_id}.")
        with transaction.atomic():
            self.write(kind, {pk: name for pk, _, name in batch}, fetched, asked)
            self.run_record.pages += 1
            save_run(self.run_record)
        if self.progress is not None:
            self.progress(self.run_record)

    def read(
        self, names: dict[int, str], fetched: dict[int, list[dict[str, Any]]]
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """Map each listed row to (parent pk, field values); unfit ones are errors."""
        incoming: dict[str, tuple[int, dict[str, Any]]] = {}
        for parent_pk, items in fetched.items():
            for item in items:
                try:
                    values = self.mirror.fields(item)
                except Exception as exc:  # one odd row must not stop the batch
                    self.error(self.unreadable(names[parent_pk], exc))
                    continue
                remote_id = values["remote_id"]
                problem = listed_row_problem(
                    {**item, "id": remote_id}, refuses_nul=self.refuses_nul
                ) or self.too_long(values)
                if problem is not None:
                    # Listed, so never dropped; a mirrored row keeps its last values. Named
                    # by id and field only: a value may hold a secret.
                    self.refused.add(remote_id)
                    self.error(f"{self.noun} {shown_id(remote_id)}: not stored because {problem}.")
                    continue
                incoming[remote_id] = (parent_pk, values)
        self.run_record.seen += len(incoming)
        return incoming

    def by_remote_id(self, remote_ids: list[str]) -> dict[str, Any]:
        """Rows of these remote ids wherever they hang (a row may move to another parent)."""
        found: dict[str, Any] = {}
        for start in range(0, len(remote_ids), WRITE_CHUNK):
            chunk = remote_ids[start : start + WRITE_CHUNK]
            for row in self.mirror.model._default_manager.filter(
                space_id=self.space_id, remote_id__in=chunk
            ):
                found[row.remote_id] = row
        return found
