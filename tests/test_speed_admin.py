"""Admin list plumbing for big tables: capped counts, probed date hierarchy, indexed search.

What is asserted is behaviour (what staff see and reach); the speed itself is measured by
bench/admin_bench.py, never by a test.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import EmptyPage
from django.db.models import Max, Min
from django.urls import reverse
from django.utils import timezone

from rooms.admin.paging import CappedCountPaginator, with_probed_dates
from rooms.models import AuditEntry, Conference

pytestmark = pytest.mark.django_db
CHANGELOG = "admin:rooms_auditentry_changelist"


def _entries(count, *, start=None, step=timedelta(hours=1), repr_prefix="thing"):
    start = start or timezone.now() - step * count
    ct = ContentType.objects.get_for_model(Conference)
    AuditEntry.objects.bulk_create(
        AuditEntry(
            content_type=ct,
            object_pk=str(i),
            object_id=i,
            object_repr=f"{repr_prefix}-{i}",
            action=AuditEntry.Action.UPDATE,
            source="sync",
            cid=f"cid-{i % 3}",
            object_remote_id=f"remote-{i}",
            timestamp=start + step * i,
        )
        for i in range(count)
    )


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 5)


def test_a_capped_count_stops_past_the_cap_and_still_reaches_every_page(small_cap):
    _entries(12)
    rows = AuditEntry.objects.order_by("-timestamp", "-pk")
    paginator = CappedCountPaginator(rows, 2)

    assert paginator.count == 6 and paginator.is_capped
    assert paginator.num_pages == 3
    seen = [e.pk for n in range(1, 7) for e in paginator.page(n).object_list]
    assert seen == list(rows.values_list("pk", flat=True))
    assert paginator.num_pages == 7  # the last full page links one further
    with pytest.raises(EmptyPage):
        paginator.page(7)


def test_an_uncapped_count_is_exact(small_cap):
    _entries(4)
    paginator = CappedCountPaginator(AuditEntry.objects.order_by("pk"), 2)

    assert paginator.count == 4 and not paginator.is_capped
    assert [len(paginator.page(n).object_list) for n in (1, 2)] == [2, 2]


def test_the_change_log_says_more_than_the_cap_and_serves_pages_past_it(admin_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 150)
    _entries(250)

    first = admin_client.get(reverse(CHANGELOG))
    assert b"More than 150 audit trail entries" in first.content
    deep = admin_client.get(reverse(CHANGELOG), {"p": 3})
    assert deep.status_code == 200
    assert len(deep.context["cl"].result_list) == 50
    assert b"250 audit trail entries" not in deep.content


def test_the_change_log_counts_exactly_below_the_cap(admin_client):
    _entries(7)

    response = admin_client.get(reverse(CHANGELOG))
    assert b"7 audit trail entries" in response.content
    assert b"More than" not in response.content


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_probed_dates_match_djangos_own(settings, zone):
    settings.TIME_ZONE = zone
    # Across two year ends, months with and without rows, and days with gaps.
    local = ZoneInfo(zone)
    stamps = [
        datetime(2024, 12, 31, 23, 30, tzinfo=local),
        datetime(2025, 1, 1, 0, 15, tzinfo=local),
        datetime(2025, 3, 2, 12, 0, tzinfo=local),
        datetime(2025, 3, 9, 8, 0, tzinfo=local),
        datetime(2026, 7, 4, 18, 0, tzinfo=local),
    ]
    for stamp in stamps:
        _entries(1, start=stamp)
    with timezone.override(zone):
        plain = AuditEntry.objects.all()
        probed = with_probed_dates(AuditEntry.objects.all())
        for kind in ("year", "month", "day"):
            assert probed.datetimes("timestamp", kind) == list(plain.datetimes("timestamp", kind))
        in_2025 = {"timestamp__gte": datetime(2025, 1, 1, tzinfo=local)}
        assert probed.filter(**in_2025).datetimes("timestamp", "month", "DESC") == list(
            plain.filter(**in_2025).datetimes("timestamp", "month", "DESC")
        )
    span = {"first": Min("timestamp"), "last": Max("timestamp")}
    assert probed.aggregate(**span) == plain.aggregate(**span)
    assert with_probed_dates(AuditEntry.objects.none()).datetimes("timestamp", "year") == []


def test_the_date_hierarchy_drills_down_to_days_with_rows(admin_client):
    now = timezone.now()
    _entries(3, start=now - timedelta(days=2), step=timedelta(days=1))

    year = admin_client.get(reverse(CHANGELOG), {"timestamp__year": now.year})
    assert year.status_code == 200
    month = admin_client.get(
        reverse(CHANGELOG), {"timestamp__year": now.year, "timestamp__month": now.month}
    )
    assert month.status_code == 200 and b"timestamp__day=" in month.content


def test_change_log_search_finds_objects_by_part_of_their_name_and_ids_whole(admin_client):
    conference = Conference.objects.create(name="quarterly-review", display_name="Q3 review")
    other = Conference.objects.create(name="standup")
    ct = ContentType.objects.get_for_model(Conference)
    AuditEntry.objects.filter(content_type=ct).update(cid="run-1")
    AuditEntry.objects.filter(object_pk=str(other.pk)).update(cid="run-2")

    def found(term):
        response = admin_client.get(reverse(CHANGELOG), {"q": term})
        return {e.object_pk for e in response.context["cl"].result_list}

    assert found("terly-rev") == {str(conference.pk)}
    assert found("q3 REVIEW") == {str(conference.pk)}
    assert found("run-2") == {str(other.pk)}
    assert found("run") == set()  # ids match whole, never in part
    assert found(str(other.pk)) == {str(other.pk)}
