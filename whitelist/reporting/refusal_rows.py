"""The refusal log's rows: counts added in a few statements, and the limits on the table.

``whitelist.reporting.flushing`` calls these off the connect path. However many
keys a flush brings, rows are written ``BATCH`` at a time: one
``INSERT ... ON CONFLICT DO UPDATE`` adding each count on SQLite and
PostgreSQL, a select, an insert, a select and an update elsewhere.
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DataError, connections, router, transaction
from django.db.models import Case, F, Field, Q, QuerySet, Value, When

from whitelist.conf import conf
from whitelist.engine.blocking import atomic_off_the_loop
from whitelist.records import RefusedConnect
from whitelist.reporting.tallies import RefusalKey, Tally

logger = logging.getLogger(__name__)

# Rows per statement (nine variables a row: well under SQLite's oldest limit of 999).
BATCH = 50
# Databases whose upsert adds a count in one statement; others select, insert and update.
UPSERT_VENDORS = ("sqlite", "postgresql")
# The columns an upsert writes besides the key (the last three follow the latest attempt).
_ADDED = ("count", "first_seen", "last_seen", "last_address", "last_user_agent")


def at(timestamp: float) -> datetime:
    """A ``time.time()`` value as an aware datetime, as the rows store it."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


def write_refusals(tallies: dict[RefusalKey, Tally]) -> None:
    """Add each tally to its row, ``BATCH`` rows a statement or few, atomically.

    A batch the database refuses as data (which ``whitelist.reporting.tallies``
    should have made impossible) is written again row by row, and the rows it
    still refuses are logged and dropped, so they cannot block the others for
    good; an outage raises, and the caller keeps every count.
    """
    alias = router.db_for_write(RefusedConnect)
    write = _upsert if connections[alias].vendor in UPSERT_VENDORS else _write_batch
    items = list(tallies.items())
    with atomic_off_the_loop(alias):
        for start in range(0, len(items), BATCH):
            batch = dict(items[start : start + BATCH])
            try:
                with transaction.atomic(using=alias):
                    write(alias, batch)
            except (DataError, ValueError):
                for key, tally in batch.items():
                    try:
                        with transaction.atomic(using=alias):
                            write(alias, {key: tally})
                    except (DataError, ValueError):
                        logger.warning(
                            "Dropped an unstorable refusal log entry %r", key, exc_info=True
                        )


def _upsert(alias: str, batch: dict[RefusalKey, Tally]) -> None:
    """One ``INSERT ... ON CONFLICT DO UPDATE`` adding each count (SQLite and PostgreSQL).

    Exact with several servers: the database adds to whatever row is there,
    another server's new one included.
    """
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = RefusedConnect._meta
    table = quote(meta.db_table)
    fields = [meta.get_field(name) for name in (*RefusalKey._fields, *_ADDED)]
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for key, tally in batch.items():
        values = (
            *key,
            tally.count,
            at(tally.first_seen),
            at(tally.last_seen),
            tally.address,
            tally.user_agent,
        )
        params += [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, values, strict=True)
        ]
    count, target = quote("count"), ", ".join(quote(name) for name in RefusalKey._fields)
    latest = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in _ADDED[2:])
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(batch))} "
        f"ON CONFLICT ({target}) DO UPDATE SET "
        f"{count} = {table}.{count} + excluded.{count}, {latest}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rows_of(alias: str, keys: Iterable[RefusalKey]) -> dict[RefusalKey, int]:
    """The primary key of each of ``keys`` that has a row."""
    matching = functools.reduce(operator.or_, (Q(**key._asdict()) for key in keys))
    found = RefusedConnect.objects.using(alias).filter(matching)
    columns = found.values_list("pk", *RefusalKey._fields)
    return {RefusalKey(*values[1:]): values[0] for values in columns}


def _write_batch(alias: str, batch: dict[RefusalKey, Tally]) -> None:
    """At most four statements: find the rows, insert the missing ones, find those, add."""
    rows = _rows_of(alias, batch)
    missing = [key for key in batch if key not in rows]
    if missing:
        RefusedConnect.objects.using(alias).bulk_create(
            [
                RefusedConnect(
                    **key._asdict(),
                    count=0,  # the update below adds the count, to a row of another server too
                    first_seen=at(batch[key].first_seen),
                    last_seen=at(batch[key].last_seen),
                )
                for key in missing
            ],
            ignore_conflicts=True,  # another server may insert one first
        )
        rows |= _rows_of(alias, missing)
    by_pk = {rows[key]: tally for key, tally in batch.items()}
    _add(RefusedConnect.objects.using(alias).filter(pk__in=by_pk), by_pk)


def _add(rows: QuerySet[RefusedConnect], by_pk: dict[int, Tally]) -> None:
    """One UPDATE: each row's count grows by its tally, and takes its latest client."""

    def per_row(column: str, value: Callable[[Tally], Any]) -> Case:
        field: Field = RefusedConnect._meta.get_field(column)
        whens = [When(pk=pk, then=Value(value(tally), field)) for pk, tally in by_pk.items()]
        return Case(*whens, output_field=field)

    rows.update(
        count=F("count") + per_row("count", lambda tally: tally.count),
        last_seen=per_row("last_seen", lambda tally: at(tally.last_seen)),
        last_address=per_row("last_address", lambda tally: tally.address),
        last_user_agent=per_row("last_user_agent", lambda tally: tally.user_agent),
    )


def prune_refusals(now: float) -> int:
    """Delete rows not seen for ``WHITELIST_REFUSAL_LOG_MAX_AGE`` days, then the least recent
    beyond ``WHITELIST_REFUSAL_LOG_MAX_ROWS``. Returns how many went."""
    cutoff = at(now) - timedelta(days=conf.WHITELIST_REFUSAL_LOG_MAX_AGE)
    deleted, _ = RefusedConnect.objects.filter(last_seen__lt=cutoff).delete()
    return deleted + cap_refusals()


def cap_refusals() -> int:
    """Delete the least recently seen rows beyond ``WHITELIST_REFUSAL_LOG_MAX_ROWS``.

    One select on the ``last_seen`` index, and one delete only when there are too many.
    """
    rows = RefusedConnect.objects.all()
    deleted = 0
    keep = conf.WHITELIST_REFUSAL_LOG_MAX_ROWS
    # The first row beyond the limit, newest first; it and every older one go, in one
    # statement however many (a list of their keys could pass SQLite's variable limit).
    first_surplus = rows.order_by("-last_seen", "-pk").values_list("last_seen", "pk")[keep:][:1]
    for last_seen, pk in first_surplus:
        older = Q(last_seen__lt=last_seen) | Q(last_seen=last_seen, pk__lte=pk)
        deleted += rows.filter(older).delete()[0]
    return deleted
