"""Histogram observations kept in Redis, so every process (web, worker, beat) adds to one.

A process-local prometheus-client histogram would be seen only by the gunicorn worker
that happened to answer the scrape, and the library's multiprocess mode shares files on
one host only (not with a worker on another machine). Each observation here increments
cumulative bucket counters in a Redis hash; /metrics reads the hashes at scrape time. A
lost Redis only resets the counters, which Prometheus treats as a counter reset.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from rooms.connections import fast_redis_client, redis_client

logger = logging.getLogger("rooms.observations")

# Upper bounds, in seconds, of each histogram's buckets.
BUCKETS = {
    "signalwire_request": (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    "sync_run": (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
}
SEP = "|"
# After Redis failed an observation, observations skip it this many seconds: every
# SignalWire call observes, and none may wait on an unreachable Redis.
PAUSE_AFTER_FAILURE = 5.0
_paused_until = 0.0


def _key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}observations:{name}"


def observe(name: str, labels: tuple[str, ...], seconds: float) -> None:
    """Count one observation of `seconds` under these label values; never raises or waits.

    A fifth of a second at most on Redis, and nothing at all for a few seconds after it
    failed: a lost observation costs less than a slow SignalWire call.
    """
    global _paused_until
    if time.monotonic() < _paused_until:
        return
    base = SEP.join(labels)
    try:
        # MULTI/EXEC: a scrape never sees a bucket counted and +Inf not yet.
        pipe = fast_redis_client().pipeline(transaction=True)
        key = _key(name)
        for bound in BUCKETS[name]:
            if seconds <= bound:
                pipe.hincrby(key, f"{base}{SEP}{bound}", 1)
        pipe.hincrby(key, f"{base}{SEP}+Inf", 1)
        pipe.hincrbyfloat(key, f"{base}{SEP}sum", seconds)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics never fail the work they measure
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
        logger.debug("observation %s not kept: %s", name, exc)


def read(name: str) -> dict[tuple[str, ...], dict[str, float]]:
    """Every label set's cumulative bucket counts and sum: {labels: {"0.5": n, ..., "sum": s}}."""
    raw = redis_client().hgetall(_key(name))
    found: dict[tuple[str, ...], dict[str, float]] = {}
    for field, value in raw.items():
        text = field.decode() if isinstance(field, bytes) else field
        *labels, bucket = text.split(SEP)
        found.setdefault(tuple(labels), {})[bucket] = float(value)
    return found
