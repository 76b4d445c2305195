"""The portal's own small pages outside admin."""

from django.http import HttpRequest, JsonResponse

from rooms.health import health_report
from rooms.services import alerts


def health(request: HttpRequest) -> JsonResponse:
    """Report database, Redis and last sync state, without any secret."""
    report = health_report()
    # The web notices a dead worker or beat: the worker's periodic check cannot.
    alerts.check_heartbeats()
    return JsonResponse(report, status=200 if report["ok"] else 503)
