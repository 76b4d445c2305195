"""/metrics in Prometheus text format, behind a bearer token (METRICS_TOKEN; unset: 404).

Correct with several gunicorn workers and Celery workers: nothing is counted in process
memory. Gauges are read from the database when scraped (a custom collector), and the two
histograms (sync run durations, SignalWire request latency) from cumulative counters in
Redis that every process adds to (rooms.observations).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from rooms import observations, registry
from rooms.models import UNPUSHED_STATES, Alert, AlertKind, RoomSession, SyncRun, SyncState
from rooms.models.sessions import LIVE


class PortalCollector(Collector):
    """Reads every figure at scrape time."""

    def collect(self) -> Iterator[Any]:
        """Yield the portal's metric families."""
        yield from _rows()
        yield _since_last_success()
        yield from _live()
        yield _open_alerts()
        yield _histogram(
            "portal_sync_run_duration_seconds", "Duration of finished sync runs.",
            ["kind", "outcome"], "sync_run",
        )
        yield _histogram(
            "portal_signalwire_request_duration_seconds",
            "SignalWire requests (retries included) by method and status, and their latency.",
            ["method", "status"], "signalwire_request",
        )


def _rows() -> Iterator[GaugeMetricFamily]:
    pending = GaugeMetricFamily(
        "portal_rows_pending", "Rows whose change waits to reach SignalWire.", labels=["resource"]
    )
    failed = GaugeMetricFamily(
        "portal_rows_push_failed", "Rows whose push SignalWire refused.", labels=["resource"]
    )
    for spec in registry.RESOURCES.values():
        counts = spec.model._default_manager.aggregate(
            pending=Count("id", filter=Q(sync_state__in=UNPUSHED_STATES)),
            failed=Count("id", filter=Q(sync_state=SyncState.PUSH_FAILED)),
        )
        pending.add_metric([spec.kind], counts["pending"])
        failed.add_metric([spec.kind], counts["failed"])
    yield pending
    yield failed


def _since_last_success() -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "portal_sync_seconds_since_success",
        "Seconds since the last successful sync run of each kind (absent: never).",
        labels=["kind"],
    )
    now = timezone.now()
    last = (
        SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED)
        .values("kind").annotate(at=Max("finished_at"))
    )
    for row in last:
        if row["at"] is not None:
            family.add_metric([row["kind"]], (now - row["at"]).total_seconds())
    return family


def _live() -> Iterator[GaugeMetricFamily]:
    live = RoomSession.objects.filter(status=LIVE).aggregate(
        sessions=Count("id"), members=Coalesce(Sum("members_now"), 0)
    )
    yield GaugeMetricFamily("portal_live_sessions", "Room sessions in progress.",
                            value=live["sessions"])
    yield GaugeMetricFamily("portal_live_members", "Members in the sessions in progress.",
                            value=live["members"])


def _open_alerts() -> GaugeMetricFamily:
    family = GaugeMetricFamily("portal_open_alerts", "Open alerts by kind.", labels=["kind"])
    counts = dict(
        Alert.objects.filter(resolved_at__isnull=True).values_list("kind")
        .annotate(n=Count("id")).values_list("kind", "n")
    )
    for kind in AlertKind.values:
        family.add_metric([kind], counts.get(kind, 0))
    return family


def _histogram(name: str, documentation: str, labels: list[str], source: str) -> Any:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    bounds = observations.BUCKETS[source]
    for values, counts in sorted(observations.read(source).items()):
        if len(values) != len(labels):
            continue
        buckets = [(str(b), counts.get(str(b), 0.0)) for b in bounds]
        buckets.append(("+Inf", counts.get("+Inf", 0.0)))
        family.add_metric(list(values), buckets, sum_value=counts.get("sum", 0.0))
    return family


def scrape() -> bytes:
    """The metrics as Prometheus text, read now."""
    registry_ = CollectorRegistry(auto_describe=False)
    registry_.register(PortalCollector())
    return generate_latest(registry_)


def authorised(request: HttpRequest) -> bool:
    """Tell whether the request carries the metrics bearer token (compared in constant time)."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Serve /metrics: 404 when METRICS_TOKEN is unset, 401 without the right bearer token."""
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off")
    if not authorised(request):
        response = HttpResponse("a bearer token is required\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    started = time.perf_counter()
    body = scrape()
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["X-Scrape-Seconds"] = f"{time.perf_counter() - started:.3f}"
    return response
