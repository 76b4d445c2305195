"""/metrics: off without a token, bearer-only, figures read at scrape time from any process."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from rooms import sync
from rooms.models import Alert, AlertKind, Room, SyncRun, SyncState
from rooms.tasks import sync as sync_tasks
from tests.waiting import wait_until

TOKEN = "metrics-token-for-tests-31c9"


def scrape(client) -> dict:
    """{(name, labels as sorted tuple): value} of one authorised scrape."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """The sample's value; a scrape without it fails the test (a zero must be scraped)."""
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"the scrape has no {name}{labels}"
    return samples[key]


def count_before(samples: dict, name: str, **labels) -> float:
    """A histogram's count before a step: a label set nothing observed yet has no sample."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_and_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and TOKEN not in response.content.decode()


@pytest.mark.django_db
def test_gauges_say_what_the_database_holds_at_scrape_time(client, settings):
    settings.METRICS_TOKEN = TOKEN
    for i in range(3):
        Room.objects.create(name=f"r{i}")
    Room.objects.filter(name="r0").update(sync_state=SyncState.PUSH_FAILED)
    Room.objects.filter(name="r1").update(sync_state=SyncState.PENDING_DELETE)
    Room.objects.filter(name="r2").update(sync_state=SyncState.SYNCED)
    Alert.objects.create(kind=AlertKind.SYNC_FAILING, subject="rooms", summary="x")
    SyncRun.objects.create(kind="rooms", outcome="succeeded", finished_at=timezone.now())

    samples = scrape(client)

    assert value(samples, "portal_rows_push_failed", resource="room") == 1
    assert value(samples, "portal_rows_pending", resource="room") == 1
    assert value(samples, "portal_rows_pending", resource="conference") == 0
    assert value(samples, "portal_open_alerts", kind="sync_failing") == 1
    assert value(samples, "portal_open_alerts", kind="lockout") == 0
    assert 0 <= value(samples, "portal_sync_seconds_since_success", kind="rooms") < 60
    assert ("portal_live_sessions", ()) in samples

    Room.objects.filter(name="r0").update(sync_state=SyncState.SYNCED)
    assert value(scrape(client), "portal_rows_push_failed", resource="room") == 0


@pytest.mark.django_db
def test_sync_durations_and_signalwire_requests_are_histograms(sandbox, client, settings):
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    sandbox.seed(rooms=2, seed=5)

    sync.sync_rooms()

    after = scrape(client)
    runs = "portal_sync_run_duration_seconds_count"
    assert value(after, runs, kind="rooms", outcome="succeeded") == (
        count_before(before, runs, kind="rooms", outcome="succeeded") + 1
    )
    assert value(after, "portal_sync_run_duration_seconds_bucket", kind="rooms",
                 outcome="succeeded", le="+Inf") >= 1
    # Kept under artifacts/ to show what a scrape looks like.
    out = Path(__file__).resolve().parents[1] / "artifacts" / "alert-drill"
    out.mkdir(parents=True, exist_ok=True)
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    (out / "metrics-scrape.txt").write_text(text)
    requests = "portal_signalwire_request_duration_seconds_count"
    assert value(after, requests, method="GET", status="200") > count_before(
        before, requests, method="GET", status="200"
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_what_the_worker_measures_shows_in_the_web_processes_scrape(
    sandbox, client, settings, celery_worker
):
    settings.METRICS_TOKEN = TOKEN
    sandbox.seed(rooms=1, seed=6)
    runs = "portal_sync_run_duration_seconds_count"
    before = count_before(scrape(client), runs, kind="rooms", outcome="succeeded")

    sync_tasks.sync_rooms.delay(trigger="test")

    wait_until(lambda: count_before(scrape(client), runs, kind="rooms", outcome="succeeded")
               > before,
               message="the worker's sync run to show in this process's scrape")
