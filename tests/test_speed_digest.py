"""raw_digest: kept with raw on every write, and what a no-change sync compares."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms import jsontext, sync
from rooms.models import AuditEntry, Conference, Room

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def sync_conferences():
    return sync.sync_conferences(page_size=3)


def mirror_writes(queries: list[dict]) -> list[str]:
    """Return the statements that wrote to the conference or audit tables."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(WRITES)
        and ("rooms_conference" in q["sql"] or "rooms_auditentry" in q["sql"])
    ]


def test_digest_ignores_key_order_and_tells_values_apart():
    assert jsontext.digest({"b": 1, "a": [1, 2]}) == jsontext.digest({"a": [1, 2], "b": 1})
    assert jsontext.digest({"a": 1}) != jsontext.digest({"a": 2})
    assert jsontext.digest({"a": 2**70}) != jsontext.digest({"a": 2**70 + 1})
    assert len(jsontext.digest({})) == jsontext.DIGEST_LENGTH


def test_a_model_save_keeps_the_digest_of_raw():
    conference = Conference.objects.create(name="digest-a", raw={"id": "x", "n": 1})
    assert conference.raw_digest == jsontext.digest({"id": "x", "n": 1})

    conference.raw = {"id": "x", "n": 2}
    conference.save(update_fields=["raw"])
    conference.refresh_from_db()
    assert conference.raw_digest == jsontext.digest({"id": "x", "n": 2})

    conference.display_name = "Shown"
    conference.save(update_fields=["display_name"])
    conference.refresh_from_db()
    assert conference.raw_digest == jsontext.digest({"id": "x", "n": 2})


def test_the_digest_stays_out_of_the_audit_trail():
    conference = Conference.objects.create(name="digest-b", raw={"id": "y"})
    conference.raw = {"id": "y", "extra": True}
    conference.display_name = "Renamed"
    conference.save()
    for entry in AuditEntry.objects.all():
        assert "raw_digest" not in entry.changes


def test_the_sync_stores_digests_and_a_second_run_writes_nothing(sandbox):
    sandbox.seed(conferences=7, seed=21)
    assert sync_conferences().created == 7
    for conference in Conference.objects.all():
        assert conference.raw_digest == jsontext.digest(conference.raw)

    with CaptureQueriesContext(connection) as ctx:
        run = sync_conferences()

    assert (run.unchanged, run.updated, run.created) == (7, 0, 0)
    assert mirror_writes(ctx.captured_queries) == []


def test_an_edit_without_a_new_updated_at_is_seen(sandbox):
    sandbox.seed(conferences=4, seed=22)
    sync_conferences()
    remote_id = next(iter(sandbox.conferences))
    stamp = sandbox.conferences[remote_id]["updated_at"]
    sandbox.conferences[remote_id]["display_name"] = "Edited quietly"
    assert sandbox.conferences[remote_id]["updated_at"] == stamp

    run = sync_conferences()

    assert (run.updated, run.unchanged) == (1, 3)
    local = Conference.objects.get(remote_id=remote_id)
    assert local.display_name == "Edited quietly"
    assert local.raw_digest == jsontext.digest(sandbox.conferences[remote_id])


def test_a_stale_digest_costs_a_value_compare_not_a_write(sandbox):
    sandbox.seed(conferences=3, seed=23)
    sync_conferences()
    Conference.objects.update(raw_digest="")

    with CaptureQueriesContext(connection) as ctx:
        run = sync_conferences()

    assert (run.unchanged, run.updated) == (3, 0)
    assert mirror_writes(ctx.captured_queries) == []


def test_the_migration_fills_the_digest_of_rows_already_mirrored():
    migration = importlib.import_module("rooms.migrations.0016_raw_digest")
    Conference.objects.create(name="digest-c", raw={"id": "c", "v": [1]})
    Room.objects.create(name="digest-d", raw={"id": "d"})
    Conference.objects.update(raw_digest="")
    Room.objects.update(raw_digest="")

    migration.fill_digests(apps, None)

    assert Conference.objects.get().raw_digest == jsontext.digest({"id": "c", "v": [1]})
    assert Room.objects.get().raw_digest == jsontext.digest({"id": "d"})
