"""Plain multi-row INSERTs for the sync's hot path, one executemany per batch.

Django's bulk_create builds SQL for every value of every row; at a thousand 40-column
rows per page that costs far more than the database does. Here the column list and each
column's adapter are worked out once per model, and rows go to the driver as tuples.
Only the sync and the audit trail use it, for rows whose values are already plain.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models

from rooms import jsontext
from rooms.jsontext import CanonicalJSONEncoder

Adapter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _canonical_json(value: Any) -> Any:
    return None if value is None else jsontext.dumps(value)


def _plain_json(value: Any) -> Any:
    return None if value is None else jsontext.dumps(value, sort_keys=False)


# The last datetime adapted and its text: a page's rows share one "now" several times over.
_last_datetime: tuple[Any, Any] = (None, None)


def _sqlite_datetime(value: Any) -> Any:
    """Store a datetime as Django's SQLite backend does (naive UTC text), without its checks."""
    global _last_datetime
    last = _last_datetime
    if value is last[0]:
        return last[1]
    text = value
    if isinstance(value, datetime) and value.tzinfo is not None:
        text = value.astimezone(UTC).replace(tzinfo=None)
    text = None if text is None else str(text)
    _last_datetime = (value, text)
    return text


@functools.cache
def _plan(model: type[models.Model], vendor: str) -> tuple[str, tuple[str, ...], tuple]:
    """The INSERT statement, its field names and their adapters, for one model."""
    ops = connection.ops
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
    ]
    adapters: list[Adapter] = []
    for field in fields:
        if isinstance(field, models.JSONField) and field.encoder is CanonicalJSONEncoder:
            adapters.append(_canonical_json)
        elif isinstance(field, models.JSONField) and field.encoder is None:
            adapters.append(_plain_json)
        elif isinstance(field, models.JSONField):

            def dump(value: Any, encoder: Any = field.encoder) -> Any:
                return None if value is None else json.dumps(value, cls=encoder)

            adapters.append(dump)
        elif isinstance(field, models.DateTimeField):
            adapters.append(
                _sqlite_datetime if vendor == "sqlite" else ops.adapt_datetimefield_value
            )
        elif isinstance(field, models.UUIDField):

            def prep(value: Any, f: models.UUIDField = field) -> Any:
                return f.get_db_prep_value(value, connection)

            adapters.append(prep)
        else:
            adapters.append(_identity)
    columns = ", ".join(ops.quote_name(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({marks})"
    return sql, tuple(f.attname for f in fields), tuple(adapters)


@functools.cache
def defaults(model: type[models.Model]) -> dict[str, Any]:
    """Each column's value when a row leaves it out, keyed by attname.

    Django's own rule (the declared default, else "" for text and None for nullable
    columns); callable defaults are left out, as one call would be shared by every row.
    """
    return {
        f.attname: f.get_default()
        for f in model._meta.concrete_fields
        if not (f.has_default() and callable(f.default))
    }


def insert_rows(
    model: type[models.Model],
    rows: Iterable[Mapping[str, Any]],
    shared: Mapping[str, Any] | None = None,
) -> int:
    """Insert rows given as {attname: value}; missing columns take `shared`, defaults or NULL."""
    sql, names, adapters = _plan(model, connection.vendor)
    known = defaults(model)
    base = {name: known.get(name) for name in names}
    base.update(shared or {})
    pick = operator.itemgetter(*names)
    adapted = [(i, adapt) for i, adapt in enumerate(adapters) if adapt is not _identity]
    params = []
    for row in rows:
        values = list(pick({**base, **row}))
        for i, adapt in adapted:
            values[i] = adapt(values[i])
        params.append(values)
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    return len(params)
