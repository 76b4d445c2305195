"""Admin list plumbing that stays fast on big tables: bounded counts and cheap date drill-downs.

Django admin counts every row a change list matches and, for a date hierarchy, lists the
distinct years, months or days of all of them; both read the whole table. Here the count
stops at a cap (the page links reach every page up to it; past it, each full page links
to the one after, and any page number that has rows is served) and the date hierarchy
asks, per year, month or day, whether any row falls in it: a handful of lookups on the
date column's index instead of a pass over every row. A deep page finds its rows' keys
first (on the ordering's index alone) and only then reads those rows and their joins, and
a filter by a column's values lists them by stepping through the column's index.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin import AllValuesFieldListFilter
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import F, Max, Min, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

# Rows counted exactly before a list says "more than". A count up to here stays cheap on
# an index; past it the page numbers stop at the cap.
COUNT_CAP = 10_000
# Distinct values a value filter offers (a column SignalWire fills with a few words).
VALUES_CAP = 50


def page_rows(queryset: QuerySet, bottom: int, top: int) -> list[Any]:
    """The rows from `bottom` to `top` of an ordered queryset, skipped over by key only.

    An OFFSET reads (and joins) every row it skips; asking for the keys alone lets the
    database skip along the ordering's index, then read just the page's rows.
    """
    keys = list(queryset.values_list("pk", flat=True)[bottom:top])
    if not keys:
        return []
    # By key alone: with the list's filters kept, SQLite may walk the filter's index
    # (a million rows) rather than look the hundred keys up.
    rows = queryset.model._base_manager.filter(pk__in=keys)
    rows.query.select_related = queryset.query.select_related
    found = {row.pk: row for row in rows}
    return [found[key] for key in keys if key in found]


class CappedCountPaginator(Paginator):
    """Count at most COUNT_CAP + 1 rows; `is_capped` tells the template there are more."""

    count_cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        """Count the matching rows, stopping one past the cap."""
        object_list: Any = self.object_list
        if not isinstance(object_list, QuerySet):
            return len(object_list)
        return object_list[: self.count_cap + 1].count()

    @property
    def is_capped(self) -> bool:
        """Tell whether more rows match than were counted."""
        return self.count > self.count_cap

    @property
    def cap_label(self) -> str:
        """The cap as the pages print it ("10,000")."""
        return f"{self.count_cap:,}"

    def page(self, number: Any) -> Page:
        """Return the page; past the cap, any page that has rows (and one more link on)."""
        if not self.is_capped:
            return super().page(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        bottom = (number - 1) * self.per_page
        object_list: Any = self.object_list
        rows = page_rows(object_list, bottom, bottom + self.per_page)
        if not rows:
            raise EmptyPage(self.error_messages["no_results"])
        if number >= self.num_pages:
            # The page links run to this page, and to the next while this one is full.
            self.__dict__["num_pages"] = number + (len(rows) == self.per_page)
        return Page(rows, number, self)


def _bounds(kind: str, start: datetime) -> datetime:
    """The start of the next year, month or day after `start`."""
    if kind == "year":
        return start.replace(year=start.year + 1)
    if kind == "month":
        days = calendar.monthrange(start.year, start.month)[1]
        return (start + timedelta(days=days)).replace(day=1)
    return start + timedelta(days=1)


def _periods(kind: str, first: datetime, last: datetime) -> list[datetime]:
    """Every year, month or day from `first` to `last` (naive local times), in order."""
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind in ("year", "month"):
        start = start.replace(day=1)
    if kind == "year":
        start = start.replace(month=1)
    periods = []
    while start <= last:
        periods.append(start)
        start = _bounds(kind, start)
    return periods


class ProbedDatesQuerySet(QuerySet):
    """A queryset whose `datetimes()` probes the index per period instead of reading all rows.

    For the admin's date hierarchy: the answer is the same list of periods that have rows,
    found with one EXISTS per year, month or day between the first and last row.
    """

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Answer a bare Min/Max of a column (the date hierarchy's) by two index lookups.

        SQLite reads every row for MIN and MAX in one statement; each alone, as an
        ordered LIMIT 1, is one step down the column's index on both databases.
        """
        simple = (
            not args
            and kwargs
            and all(
                type(agg) in (Min, Max)
                and agg.filter is None
                and len(agg.source_expressions) == 1
                and isinstance(agg.source_expressions[0], F)
                for agg in kwargs.values()
            )
        )
        if not simple:
            return super().aggregate(*args, **kwargs)
        result = {}
        for alias, agg in kwargs.items():
            name = agg.source_expressions[0].name
            order = name if isinstance(agg, Min) else f"-{name}"
            result[alias] = (
                self.filter(**{f"{name}__isnull": False})
                .order_by(order)
                .values_list(name, flat=True)
                .first()
            )
        return result

    def datetimes(  # type: ignore[override]
        self, field_name: str, kind: str, order: str = "ASC", tzinfo: Any = None, **kwargs: Any
    ) -> list[datetime]:
        """Return the periods (year, month or day) in which at least one row falls."""
        if kind not in ("year", "month", "day"):
            plain: Any = super().datetimes
            return list(plain(field_name, kind, order, tzinfo, **kwargs))
        span = self.aggregate(first=Min(field_name), last=Max(field_name))
        if span["first"] is None:
            return []
        zone = tzinfo or timezone.get_current_timezone()
        first = timezone.localtime(span["first"], zone).replace(tzinfo=None)
        last = timezone.localtime(span["last"], zone).replace(tzinfo=None)
        found = []
        for naive in _periods(kind, first, last):
            start = timezone.make_aware(naive, zone)
            stop = timezone.make_aware(_bounds(kind, naive), zone)
            period = {f"{field_name}__gte": start, f"{field_name}__lt": stop}
            # The period's bounds come first in the WHERE clause: SQLite walks the index
            # from the first range it reads, and the list's own date filter (the whole
            # year, say) would otherwise be it.
            bounds: Any = self.model._base_manager.filter(**period).order_by()
            probe = bounds & self.order_by()
            if probe.exists():
                found.append(start)
        return found if order == "ASC" else found[::-1]


def with_probed_dates(queryset: QuerySet) -> QuerySet:
    """The same queryset, answering `datetimes()` by index probes (see ProbedDatesQuerySet)."""
    probed: Any = queryset._chain()  # type: ignore[attr-defined]
    probed.__class__ = ProbedDatesQuerySet
    return probed


def distinct_values(
    queryset: QuerySet,
    field: str,
    limit: int = VALUES_CAP,
    *,
    space_ids: list[int] | None = None,
) -> list[Any]:
    """The distinct non-null values of an indexed column, in order, one index step each.

    A DISTINCT reads every row; this asks for the smallest value, then the smallest above
    it, and so on (one recursive query), so it costs what the number of values costs.
    `space_ids` keeps to the rows of those Spaces (None: every row).
    """
    model = queryset.model
    connection = connections[queryset.db]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column = quote(model._meta.get_field(field).column)
    within = ""
    params: list[Any] = []
    if space_ids is not None:
        space_column = quote(model._meta.get_field("space").column)
        marks = ", ".join(["%s"] * len(space_ids)) or "NULL"
        within = f" AND {space_column} IN ({marks})"
        params = list(space_ids)
    sql = (
        f"WITH RECURSIVE seen(value, n) AS ("
        f" SELECT MIN({column}), 1 FROM {table} WHERE 1 = 1{within}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > seen.value{within}),"
        f" seen.n + 1"
        f" FROM seen WHERE seen.value IS NOT NULL AND seen.n < %s"
        f") SELECT value FROM seen WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params, limit])
        return [row[0] for row in cursor.fetchall()]


class IndexedValuesFilter(AllValuesFieldListFilter):
    """Django's filter by each value of a column, listing the values through its index."""

    def __init__(self, field: Any, request: Any, params: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(field, request, params, *args, **kwargs)
        from rooms.admin.scoping import request_spaces

        spaces = request_spaces(request)
        ids = None if spaces is None else [space.pk for space in spaces]
        self.lookup_choices = distinct_values(  # type: ignore[assignment]
            self.lookup_choices, field.name, space_ids=ids
        )
