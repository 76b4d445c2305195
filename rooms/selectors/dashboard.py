"""The admin index's operator dashboard: live now, rows waiting, last syncs, minutes today."""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from rooms.models import Conference, Room, RoomSession, SyncRun, SyncState
from rooms.models.sessions import LIVE
from rooms.selectors.spaces import Spaces, in_spaces
from rooms.selectors.usage import usage_by_day


def dashboard_figures(*, spaces: Spaces = None) -> dict:
    """What an operator looks at first: live now, rows waiting, last syncs, minutes today."""
    live = in_spaces(RoomSession.objects.filter(status=LIVE), spaces).aggregate(
        sessions=Count("id"), members=Coalesce(Sum("members_now"), 0)
    )
    waiting = {}
    for model in (Conference, Room):
        waiting[model._meta.verbose_name_plural] = in_spaces(model.objects.all(), spaces).aggregate(
            pending=Count(
                "id", filter=Q(sync_state__in=(SyncState.PENDING_PUSH, SyncState.PENDING_DELETE))
            ),
            failed=Count("id", filter=Q(sync_state=SyncState.PUSH_FAILED)),
        )
    last_runs = []
    for kind, label in SyncRun.Kind.choices:
        run = (
            in_spaces(SyncRun.objects.filter(kind=kind), spaces)
            .exclude(outcome=SyncRun.Outcome.SKIPPED)
            .order_by("-started_at")
            .first()
        )
        last_runs.append({"label": label, "run": run})
    today = usage_by_day(days=1, spaces=spaces)[0]
    return {"live": live, "waiting": waiting, "last_runs": last_runs, "today": today}
