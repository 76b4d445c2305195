"""Health figures for operators and load balancers."""

from django.db import connection

from rooms.connections import redis_client


def health_report() -> dict:
    """Check the database, Redis, the worker heartbeat and beat; add the latest sync run."""
    report: dict = {"ok": True, "database": "ok", "redis": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        report.update(ok=False, database=f"error: {type(exc).__name__}")
    try:
        # The locks' client: one connection pool per process, not one per request.
        redis_client().ping()
    except Exception as exc:  # noqa: BLE001
        report.update(ok=False, redis=f"error: {type(exc).__name__}")
    try:
        from rooms.services.alerts import heartbeat_state

        beats = heartbeat_state()
        report["worker"] = beats["worker"]
        report["beat"] = beats["beat"]
        # A silent worker or beat means nothing reaches SignalWire: the load balancer hears it.
        if not (beats["worker"]["ok"] and beats["beat"]["ok"]):
            report["ok"] = False
    except Exception as exc:  # noqa: BLE001 - Redis down is reported above
        report["worker"] = report["beat"] = {"ok": False, "error": type(exc).__name__}
    try:
        from rooms.models import SyncRun

        last = SyncRun.objects.order_by("-started_at").first()
    except Exception:  # noqa: BLE001 - before migrations, or models not there yet
        last = None
    if last is not None:
        report["last_sync"] = {
            "kind": last.kind,
            "started_at": last.started_at.isoformat(),
            "outcome": last.outcome,
        }
    return report
