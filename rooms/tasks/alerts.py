"""Alert tasks: the periodic check, the heartbeat beat sends, and each message's delivery."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import before_task_publish
from django.conf import settings

from rooms.services import alert_delivery, alerts


@shared_task(name=alerts.CHECK_TASK, ignore_result=True)
def check_alerts() -> str:
    """Open, raise, remind and resolve alerts from what holds now; resend lost messages."""
    result = alerts.check_alerts()
    if result.unsettled:
        alerts.soon()  # look again once the failures have stopped
    alerts.resend_pending(older_than_seconds=3600)
    return (
        f"opened {len(result.opened)}, reminded {len(result.reminded)}, "
        f"resolved {len(result.resolved)}"
    )


@shared_task(name=alerts.HEARTBEAT_TASK, ignore_result=True)
def alert_heartbeat() -> None:
    """Note that a worker is alive (beat sends this every ALERT_HEARTBEAT_INTERVAL seconds)."""
    alerts.record_worker_heartbeat()


@before_task_publish.connect(dispatch_uid="rooms.tasks.alerts.beat_schedules")
def beat_schedules(sender: str | None = None, **kwargs: Any) -> None:
    """In the process that sends the heartbeat (beat), note when it was scheduled."""
    if sender == alerts.HEARTBEAT_TASK:
        try:
            alerts.record_beat_schedule()
        except Exception:  # noqa: BLE001 - Redis down: the task is not sent either
            pass


@shared_task(bind=True, name=alerts.DELIVER_TASK, ignore_result=True, max_retries=None)
def deliver_alert(self: Task, delivery_pk: int) -> None:
    """Send one alert message; retry with a doubling wait, then record it as failed."""
    retries = self.request.retries
    final = retries >= settings.ALERT_DELIVERY_RETRIES
    try:
        alert_delivery.deliver(delivery_pk, final=final)
    except alert_delivery.DeliveryError as exc:
        raise self.retry(
            exc=exc, countdown=settings.ALERT_DELIVERY_BACKOFF * (2**retries)
        ) from exc
