"""Alerts: the conditions that need staff, read from the database and Redis, opened once each.

`check_alerts` evaluates every condition, opens an alert per kind and subject that holds
(or raises the count of the open one), resolves the open alerts whose condition cleared,
and reminds at most once per ALERT_REMINDER_HOURS. Each message is a delivery row, sent
by the worker after the transaction commits. Concurrent checks are safe without a lock:
opening relies on the one-open-alert constraint, and resolving and reminding on
conditional updates that only one check wins.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

from rooms import registry
from rooms.connections import redis_client
from rooms.models import (
    UNPUSHED_STATES,
    ActionRun,
    Alert,
    AlertDelivery,
    AlertKind,
    AlertSubscription,
    SyncRun,
    SyncState,
    WebhookEndpoint,
)
from rooms.selectors.spaces import SpaceNames, may_see_space

logger = logging.getLogger("rooms.alerts")

CHECK_TASK = "rooms.tasks.check_alerts"
DELIVER_TASK = "rooms.tasks.deliver_alert"
HEARTBEAT_TASK = "rooms.tasks.alert_heartbeat"
# Runs of these actions that end with failures open an alert.
WATCHED_RUNS = (
    ActionRun.Action.BULK_EDIT,
    ActionRun.Action.DELETE,
    ActionRun.Action.RETENTION,
    ActionRun.Action.PROMOTE,
)
# A failing sync kind: its last this many runs failed, or no success for this many intervals.
SYNC_FAILED_RUNS = 3
Notice = AlertDelivery.Notice


@dataclass(frozen=True)
class Condition:
    """A condition that holds now: what it is about, how often, and where to see it."""

    kind: str
    subject: str
    count: int
    summary: str
    link: str = ""
    space_id: int | None = None


class Unsettled(Exception):
    """Failures are still coming in: count them once they stop, not half-way."""


@dataclass
class CheckResult:
    """What one check did, as (kind, subject) pairs; `unsettled` when a kind was left for later."""

    unsettled: bool = False
    opened: list[tuple[str, str]] = field(default_factory=list)
    raised: list[tuple[str, str]] = field(default_factory=list)
    reminded: list[tuple[str, str]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)


# --- heartbeats of the worker and beat (Redis) -------------------------------------------


def _key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}alerts:{name}"


def record_worker_heartbeat(at: float | None = None) -> None:
    """Note that a worker ran the heartbeat task now (or at `at`, a Unix time)."""
    redis_client().set(_key("worker_heartbeat"), repr(at if at is not None else time.time()))


def record_beat_schedule(at: float | None = None) -> None:
    """Note that beat sent the heartbeat task now (or at `at`, a Unix time)."""
    redis_client().set(_key("beat_scheduled"), repr(at if at is not None else time.time()))


def _stamp(name: str) -> float | None:
    value = redis_client().get(_key(name))
    return float(value) if value is not None else None


def heartbeat_state() -> dict[str, Any]:
    """Ages (seconds) of the worker heartbeat and beat's last schedule, and whether each is fresh.

    Nothing recorded yet counts from the first time anyone looked, so a worker or beat that
    never started is noticed too. A stale limit of 0 turns the watch off.
    """
    now = time.time()
    limit = settings.ALERT_HEARTBEAT_STALE_SECONDS
    client = redis_client()
    client.set(_key("watch_since"), repr(now), nx=True)
    watch_since = _stamp("watch_since") or now
    state: dict[str, Any] = {"stale_after_seconds": limit}
    for name, key in (("worker", "worker_heartbeat"), ("beat", "beat_scheduled")):
        at = _stamp(key)
        age = None if at is None else max(0.0, now - at)
        silent_for = age if age is not None else now - watch_since
        state[name] = {
            "age_seconds": None if age is None else round(age, 1),
            "last": None if at is None else datetime.fromtimestamp(at, tz=UTC).isoformat(),
            "ok": not (limit and silent_for > limit),
        }
    return state


# --- the conditions -----------------------------------------------------------------------


def _changelist(model: Any, query: str = "") -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{query}" if query else url


def _push_failed(now: datetime) -> list[Condition]:
    # A run refusing a thousand pushes is one alert that says a thousand: while refusals
    # still arrive, the count waits until they have stopped for ALERT_CHECK_DELAY seconds.
    last = _stamp("last_failure")
    if last is not None and time.time() - last < settings.ALERT_CHECK_DELAY:
        raise Unsettled
    found = []
    spaces = SpaceNames()
    for spec in registry.RESOURCES.values():
        counts = (
            spec.model._default_manager.filter(sync_state=SyncState.PUSH_FAILED)
            .order_by().values_list("space_id").annotate(n=Count("pk"))
        )
        for space_id, n in counts:
            noun = spec.model._meta.verbose_name if n == 1 else spec.model._meta.verbose_name_plural
            found.append(Condition(
                AlertKind.PUSH_FAILED, spaces.subject(spec.kind, space_id), n,
                f"SignalWire{spaces.where(space_id)} refused the push of {n} {noun}; "
                "each row shows its reason.",
                spaces.link(_changelist(spec.model, "sync_state__exact=push_failed"), space_id),
                space_id,
            ))
    return found


def _pending_too_long(now: datetime) -> list[Condition]:
    minutes = settings.ALERT_PENDING_MINUTES
    cutoff = now - timedelta(minutes=minutes)
    found = []
    spaces = SpaceNames()
    for spec in registry.RESOURCES.values():
        counts = (
            spec.model._default_manager.filter(
                sync_state__in=UNPUSHED_STATES, updated_at__lt=cutoff
            )
            .order_by().values_list("space_id").annotate(n=Count("pk"))
        )
        for space_id, n in counts:
            noun = spec.model._meta.verbose_name if n == 1 else spec.model._meta.verbose_name_plural
            found.append(Condition(
                AlertKind.PENDING_TOO_LONG, spaces.subject(spec.kind, space_id), n,
                f"{n} {noun} have waited more than {minutes} minutes to reach "
                f"SignalWire{spaces.where(space_id)}.",
                spaces.link(_changelist(spec.model, "sync_state__exact=pending_push"), space_id),
                space_id,
            ))
    return found


# The beat task that records each sync kind's runs; its schedule is the kind's interval.
SYNC_KIND_TASKS = {
    SyncRun.Kind.CONFERENCES: "rooms.tasks.sync_conferences",
    SyncRun.Kind.ROOMS: "rooms.tasks.sync_rooms",
    SyncRun.Kind.PUSH: "rooms.tasks.push_pending",
    SyncRun.Kind.TOKENS: "rooms.tasks.refresh_all_tokens",
    SyncRun.Kind.STREAMS: "rooms.tasks.sync_streams",
    SyncRun.Kind.LIVE_SESSIONS: "rooms.tasks.refresh_live_sessions",
    SyncRun.Kind.SESSIONS: "rooms.tasks.sync_session_history",
    SyncRun.Kind.RECORDINGS: "rooms.tasks.sync_recordings",
    SyncRun.Kind.LOGS: "rooms.tasks.sync_logs",
}


def sync_intervals() -> dict[str, int]:
    """Seconds between scheduled runs of each sync kind, read from beat's schedule.

    A kind's task may be scheduled more than once (a frequent and a daily full run): the
    shortest schedule is the one a healthy sync keeps. A kind whose task beat does not
    schedule falls back to SIGNALWIRE_SYNC_INTERVAL, so no kind goes unwatched.
    """
    shortest: dict[str, float] = {}
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        schedule = entry.get("schedule")
        if isinstance(schedule, int | float):
            task = str(entry["task"])
            shortest[task] = min(float(schedule), shortest.get(task, float(schedule)))
    fallback = float(settings.SIGNALWIRE_SYNC_INTERVAL)
    tasks: dict[str, str] = {str(kind): task for kind, task in SYNC_KIND_TASKS.items()}
    return {
        kind: int(shortest.get(tasks.get(kind, ""), fallback)) for kind in SyncRun.Kind.values
    }


def _sync_failing(now: datetime) -> list[Condition]:
    found = []
    spaces = SpaceNames()
    for space_id in sorted(spaces.names):
        found.extend(_space_sync_failing(now, space_id, spaces))
    return found


def _space_sync_failing(now: datetime, space_id: int, spaces: SpaceNames) -> list[Condition]:
    found = []
    ended = SyncRun.objects.filter(space_id=space_id).exclude(
        outcome__in=[SyncRun.Outcome.RUNNING, SyncRun.Outcome.SKIPPED]
    )
    for kind, interval in sync_intervals().items():
        runs = ended.filter(kind=kind)
        last_success = runs.filter(outcome=SyncRun.Outcome.SUCCEEDED).aggregate(
            at=Max("started_at")
        )["at"]
        failed_since = runs.filter(outcome=SyncRun.Outcome.FAILED)
        if last_success is not None:
            failed_since = failed_since.filter(started_at__gt=last_success)
        failures = failed_since.count()
        window = now - timedelta(seconds=SYNC_FAILED_RUNS * interval)
        first = runs.order_by("started_at").values_list("started_at", flat=True).first()
        no_success = first is not None and first < window and (
            last_success is None or last_success < window
        )
        if failures >= SYNC_FAILED_RUNS or no_success:
            label = SyncRun.Kind(kind).label
            what = (
                f"failed its last {failures} runs" if failures >= SYNC_FAILED_RUNS
                else f"has had no successful run for {SYNC_FAILED_RUNS} of its intervals"
            )
            found.append(Condition(
                AlertKind.SYNC_FAILING, spaces.subject(kind, space_id), max(failures, 1),
                f"The {label} sync{spaces.where(space_id)} {what}; the sync runs page shows "
                "each run's error.",
                spaces.link(_changelist(SyncRun, f"kind__exact={kind}"), space_id),
                space_id,
            ))
    return found


def _run_failures(now: datetime) -> list[Condition]:
    # The latest run of each action and kind, when it ended with failures in the last day.
    recent = ActionRun.objects.filter(
        action__in=WATCHED_RUNS, finished_at__gte=now - timedelta(days=1)
    )
    found = []
    spaces = SpaceNames()
    groups = recent.order_by().values_list("space_id", "action", "kind").distinct()
    for space_id, action, kind in groups:
        run = (
            recent.filter(space_id=space_id, action=action, kind=kind)
            .order_by("-finished_at").first()
        )
        if run is None or run.state != ActionRun.State.FINISHED_WITH_ERRORS:
            continue
        label = ActionRun.Action(action).label
        found.append(Condition(
            AlertKind.RUN_FAILURES, spaces.subject(f"{action}:{kind}", space_id),
            max(run.errors, 1),
            f"{label} of {run.total} {kind}(s){spaces.where(space_id)} finished with "
            f"{run.errors} failure(s); its run page lists them.",
            reverse("admin:rooms_actionrun_change", args=[run.pk]),
            space_id,
        ))
    return found


# At most this many account names in a lockout alert's text; the count says how many in all.
LOCKOUT_NAMES_SHOWN = 3


def _lockouts(now: datetime) -> list[Condition]:
    # One alert for every locked account: each new name raises its count, and an attacker
    # trying many names cannot flood the recipients with one message per name.
    from axes.models import AccessAttempt

    from rooms.services.alert_delivery import clean

    locked = AccessAttempt.objects.filter(
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
        attempt_time__gte=now - settings.AXES_COOLOFF_TIME,
    )
    names = list(
        locked.values_list("username", flat=True).distinct().order_by("username")
    )
    if not names:
        return []
    shown = ", ".join(clean(n or "(no account name)", 60) for n in names[:LOCKOUT_NAMES_SHOWN])
    more = len(names) - LOCKOUT_NAMES_SHOWN
    which = f"{shown} and {more} more" if more > 0 else shown
    noun = "account is" if len(names) == 1 else "accounts are"
    return [Condition(
        AlertKind.LOCKOUT, "accounts", len(names),
        f"{len(names)} {noun} locked out after repeated failed log-ins: {which}.",
        _changelist(AccessAttempt, "locked=yes"),
    )]


def _silent_processes(now: datetime) -> list[Condition]:
    state = heartbeat_state()
    found = []
    if not state["beat"]["ok"]:
        found.append(Condition(
            AlertKind.BEAT_SILENT, "beat", 1,
            "Celery beat has not scheduled its heartbeat for more than "
            f"{state['stale_after_seconds']} seconds: no periodic sync or push runs.",
        ))
    elif not state["worker"]["ok"]:
        found.append(Condition(
            AlertKind.WORKER_SILENT, "worker", 1,
            "No Celery worker has run the heartbeat for more than "
            f"{state['stale_after_seconds']} seconds: pushes, syncs and alerts wait.",
        ))
    return found


# Each evaluator and the kinds it answers for: an open alert of one of its kinds whose
# condition it no longer reports is resolved. An evaluator that fails leaves its kinds alone.
EVALUATORS = (
    (_push_failed, (AlertKind.PUSH_FAILED,)),
    (_pending_too_long, (AlertKind.PENDING_TOO_LONG,)),
    (_sync_failing, (AlertKind.SYNC_FAILING,)),
    (_run_failures, (AlertKind.RUN_FAILURES,)),
    (_lockouts, (AlertKind.LOCKOUT,)),
    (_silent_processes, (AlertKind.WORKER_SILENT, AlertKind.BEAT_SILENT)),
)


def current_conditions(
    now: datetime | None = None,
) -> tuple[list[Condition], set[str], bool]:
    """Return the conditions that hold now, the kinds evaluated, and whether any was unsettled."""
    now = now or timezone.now()
    conditions: list[Condition] = []
    evaluated: set[str] = set()
    unsettled = False
    for evaluate, kinds in EVALUATORS:
        try:
            conditions.extend(evaluate(now))
        except Unsettled:
            unsettled = True
            continue
        except Exception:  # noqa: BLE001 - Redis down: the other conditions still count
            logger.exception("alert condition %s could not be evaluated", evaluate.__name__)
            continue
        evaluated.update(kinds)
    return conditions, evaluated, unsettled


# --- opening, raising, reminding, resolving ----------------------------------------------


def check_alerts(now: datetime | None = None) -> CheckResult:
    """Bring the alerts in line with the conditions that hold now; queue the messages."""
    now = now or timezone.now()
    conditions, evaluated, unsettled = current_conditions(now)
    return _reconcile(conditions, evaluated, now, CheckResult(unsettled=unsettled))


HEARTBEAT_KINDS = (AlertKind.WORKER_SILENT, AlertKind.BEAT_SILENT)


def heartbeat_check_key() -> str:
    """The Redis key that stands for "the web looked at the heartbeats lately" while it lives."""
    return _key("web_heartbeat_check")


def check_heartbeats(now: datetime | None = None) -> CheckResult | None:
    """From the web process: open or resolve the worker and beat alerts; cheap, never raises.

    The periodic check runs on a worker, so it cannot notice that no worker runs: the web
    does, at most once per ALERT_WEB_CHECK_SECONDS. Returns None when it did not look. The
    messages are queued and go out once a worker runs again.
    """
    now = now or timezone.now()
    every = settings.ALERT_WEB_CHECK_SECONDS
    try:
        if every > 0 and not redis_client().set(heartbeat_check_key(), "1", nx=True, ex=every):
            return None
        conditions = _silent_processes(now)
        return _reconcile(conditions, set(HEARTBEAT_KINDS), now, CheckResult())
    except Exception:  # noqa: BLE001 - Redis or the database down: /health/ reports that
        logger.warning("the web could not check the worker and beat heartbeats", exc_info=True)
        return None


def _reconcile(
    conditions: list[Condition], evaluated: set[str], now: datetime, result: CheckResult
) -> CheckResult:
    """Open or raise the alerts of these conditions; resolve open ones of `evaluated` kinds."""
    holding = set()
    for condition in conditions:
        holding.add((condition.kind, condition.subject))
        _apply(condition, now, result)
    still_open = Alert.objects.filter(resolved_at__isnull=True, kind__in=evaluated)
    for alert in still_open:
        if (alert.kind, alert.subject) in holding:
            continue
        with transaction.atomic():
            won = Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
                resolved_at=now
            )
            if won:
                _notify(alert.pk, Notice.RESOLVED)
                result.resolved.append((alert.kind, alert.subject))
    for kind, subject in result.opened + result.reminded + result.resolved:
        logger.info("alert %s %s: %s", kind, subject, _verb(result, (kind, subject)))
    return result


def _verb(result: CheckResult, pair: tuple[str, str]) -> str:
    if pair in result.opened:
        return "opened"
    return "reminded" if pair in result.reminded else "resolved"


def _apply(condition: Condition, now: datetime, result: CheckResult) -> None:
    from rooms.services.alert_delivery import clean

    pair = (condition.kind, condition.subject)
    fields = {"summary": clean(condition.summary), "link": condition.link}
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=condition.kind, subject=condition.subject, count=condition.count,
                space_id=condition.space_id, notified_at=now, **fields,
            )
            _notify(alert.pk, Notice.OPENED)
        result.opened.append(pair)
        return
    except IntegrityError:
        pass  # it is open already (perhaps opened by a concurrent check this instant)
    found = Alert.objects.filter(
        kind=condition.kind, subject=condition.subject, resolved_at__isnull=True
    ).first()
    if found is None:  # resolved in between: the next check opens it again
        return
    alert = found
    if condition.count > alert.count:
        result.raised.append(pair)
    Alert.objects.filter(pk=alert.pk).update(
        count=max(alert.count, condition.count), last_seen_at=now, **fields
    )
    due = now - timedelta(hours=settings.ALERT_REMINDER_HOURS)
    if alert.notified_at is None or alert.notified_at <= due:
        with transaction.atomic():
            won = Alert.objects.filter(pk=alert.pk, notified_at=alert.notified_at).update(
                notified_at=now
            )
            if won:
                _notify(alert.pk, Notice.REMINDER)
                result.reminded.append(pair)


def _notify(alert_pk: int, notice: str) -> None:
    """Write one delivery per recipient of the alert; the worker sends them after commit."""
    from rooms.services.alert_delivery import payload

    alert = Alert.objects.get(pk=alert_pk)
    message = payload(alert, notice)
    deliveries = [
        AlertDelivery(
            alert=alert, notice=notice, channel=AlertDelivery.Channel.EMAIL, recipient=email,
            message=message,
        )
        for email in email_recipients(alert.kind, alert.space_id)
    ]
    deliveries += [
        AlertDelivery(
            alert=alert, notice=notice, channel=AlertDelivery.Channel.WEBHOOK,
            recipient=endpoint.name, endpoint=endpoint, message=message,
        )
        for endpoint in WebhookEndpoint.objects.filter(active=True)
        if endpoint.wants(alert.kind)
    ]
    created = AlertDelivery.objects.bulk_create(deliveries)
    pks = [d.pk for d in created]
    if pks:
        transaction.on_commit(lambda: _queue_deliveries(pks))


def _queue_deliveries(pks: list[int]) -> None:
    from rooms import outbox

    for pk in pks:
        # A broker outage leaves the row pending; the next check sends what is left.
        outbox.send(DELIVER_TASK, pk)


def email_recipients(kind: str, space_id: int | None = None) -> list[str]:
    """Addresses of the active staff who chose this kind by email (and may see its Space)."""
    subscriptions = AlertSubscription.objects.filter(
        user__is_active=True, user__is_staff=True
    ).exclude(user__email="").select_related("user")
    # Kinds are a JSON list: read in Python (SQLite has no JSON "contains").
    wanted = [s.user for s in subscriptions if kind in (s.kinds or [])]
    if space_id is not None:
        wanted = [user for user in wanted if may_see_space(user, space_id)]
    return sorted({user.email for user in wanted})


def resend_pending(older_than_seconds: float = 600) -> int:
    """Queue again the deliveries still pending after a while (their task was lost).

    A delivery claimed that long ago and never finished (its worker died mid-send) goes back
    to pending first; its message may then arrive twice, which beats never.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    AlertDelivery.objects.filter(
        status=AlertDelivery.Status.SENDING, claimed_at__lt=cutoff
    ).update(status=AlertDelivery.Status.PENDING)
    pks = list(
        AlertDelivery.objects.filter(
            status=AlertDelivery.Status.PENDING, created_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    _queue_deliveries(pks)
    return len(pks)


def check_soon_key() -> str:
    """The Redis key that stands for "a check is already on its way" while it lives."""
    return _key("check_soon")


def soon(*, pushes_refused: bool = False) -> None:
    """Ask for a check shortly, from where a failure happens; a burst of calls asks once.

    A refused push also notes its time: refused pushes are counted once they stop coming.
    """
    from celery import current_app

    delay = settings.ALERT_CHECK_DELAY
    try:
        if pushes_refused:
            redis_client().set(_key("last_failure"), repr(time.time()))
        if not redis_client().set(check_soon_key(), "1", nx=True, ex=max(1, int(delay))):
            return
    except Exception:  # noqa: BLE001 - the periodic check notices it anyway
        return

    def queue() -> None:
        try:
            current_app.signature(CHECK_TASK).apply_async(countdown=delay)
        except Exception:  # noqa: BLE001 - a broker outage must never fail the caller
            logger.warning("could not queue an alert check")

    transaction.on_commit(queue)


def open_alerts() -> list[Alert]:
    """The open alerts, newest first."""
    return list(Alert.objects.filter(resolved_at__isnull=True).order_by("-opened_at"))
