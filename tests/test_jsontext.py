"""Stored payloads share one canonical JSON text form, so the sync compares them as text."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps as global_apps
from django.db import connection

from rooms import jsontext, sync
from rooms.models import Conference

PAYLOAD = {
    "id": "4f1c",
    "name": "café-standup",
    "display_name": "Café \u2028 \"stand-up\" \\ ☕",
    "meta": {"nested": [1, 2.5, None, True, {"k": "ü"}], "big": 2**70},
    "quality": "1080p",
}


def stored_raw(conference: Conference) -> object:
    """Read a conference's raw column as the database gives it (text on SQLite)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT raw FROM rooms_conference WHERE id = %s", [conference.pk])
        return cursor.fetchone()[0]


def assert_stored_canonically(conference: Conference, payload: dict) -> None:
    """SQLite keeps the text as written: it must be the canonical form. jsonb keeps values."""
    stored = stored_raw(conference)
    if connection.vendor == "sqlite":
        assert stored == jsontext.dumps(payload)
    else:
        # jsonb has its own text form (PostgreSQL compares values, not text).
        assert json.loads(stored) == payload


def test_dumps_is_compact_sorted_utf8_json_that_round_trips():
    text = jsontext.dumps(PAYLOAD)

    assert json.loads(text) == PAYLOAD
    assert ", " not in text and '": ' not in text
    assert "☕" in text  # UTF-8, not \\u escapes
    # Integers beyond 64 bits are kept exactly (orjson refuses them; the fallback takes them).
    assert str(2**70) in text


def test_key_order_does_not_change_the_text():
    reordered = dict(reversed(PAYLOAD.items())) | {"meta": dict(reversed(PAYLOAD["meta"].items()))}

    assert jsontext.dumps(reordered) == jsontext.dumps(PAYLOAD)


def test_the_orm_writes_the_same_text_as_the_sync():
    orm_text = json.dumps(PAYLOAD, cls=jsontext.CanonicalJSONEncoder)
    small = {k: v for k, v in PAYLOAD.items() if k != "meta"} | {"meta": {"k": ["ü", 1.5]}}

    assert orm_text == jsontext.dumps(PAYLOAD)
    assert json.dumps(small, cls=jsontext.CanonicalJSONEncoder) == jsontext.dumps(small)


@pytest.mark.django_db
def test_payloads_saved_by_the_sync_and_by_the_orm_compare_as_text(sandbox):
    sandbox.seed(conferences=3, seed=11)
    sync.sync_conferences(page_size=2)
    listed = {item["id"]: item for item in sandbox.conferences.values()}

    for conference in Conference.objects.all():
        assert_stored_canonically(conference, listed[conference.remote_id])

    conference = Conference.objects.first()
    edited = {**conference.raw, "description": "Ünïcode ☕", "meta": {"n": [1, 2.5]}}
    Conference.objects.filter(pk=conference.pk).update(raw=edited)
    assert_stored_canonically(conference, edited)


@pytest.mark.django_db
def test_a_payload_stored_in_another_text_form_still_counts_as_unchanged(sandbox):
    sandbox.seed(conferences=2, seed=12)
    sync.sync_conferences(page_size=2)
    conference = Conference.objects.first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rooms_conference SET raw = %s WHERE id = %s",
            [json.dumps(dict(reversed(conference.raw.items())), indent=1), conference.pk],
        )
    stamp = Conference.objects.values_list("updated_at", flat=True).get(pk=conference.pk)

    run = sync.sync_conferences(page_size=2)

    assert (run.unchanged, run.updated, run.created) == (2, 0, 0)
    assert Conference.objects.values_list("updated_at", flat=True).get(pk=conference.pk) == stamp


@pytest.mark.django_db
def test_the_migration_rewrites_stored_payloads_in_the_canonical_form():
    migration = importlib.import_module("rooms.migrations.0003_raw_canonical_json")
    conference = Conference.objects.create(name="spaced", display_name="Spaced")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rooms_conference SET raw = %s WHERE id = %s",
            [json.dumps(PAYLOAD), conference.pk],
        )

    migration.canonical_payloads(global_apps, None)

    conference.refresh_from_db()
    assert conference.raw == PAYLOAD
    assert_stored_canonically(conference, PAYLOAD)


def test_strict_json_takes_brackets_in_strings_and_32_levels_but_not_33():
    from rooms import strictjson

    assert strictjson.loads('{"a": "[[[[' + "[" * 100 + '\\"]"}') == {"a": "[" * 104 + '"]'}
    assert strictjson.loads("[" * 32 + "]" * 32) is not None
    with pytest.raises(ValueError, match="nested more than 32"):
        strictjson.loads("[" * 33 + "]" * 33)
