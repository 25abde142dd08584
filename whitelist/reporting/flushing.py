"""Write the in-memory counts (``reporting.tallies``) to the database, off the connect path.

A background task of the server calls ``Recorder.flush`` every
``WHITELIST_FLUSH_INTERVAL`` seconds. The refusals cost a fixed number of
statements however many origins a flood invents: the ``ROWS_PER_FLUSH`` busiest
keep their own rows, the rest are added to one overflow row per reason, and
rows are written ``BATCH`` at a time (a select, an insert of the new ones, an
update adding every count). Each flush that added rows enforces
``WHITELIST_REFUSAL_LOG_MAX_ROWS`` at once. The rule activity that changed is
written at most every ``ACTIVITY_SECONDS``, in one statement (with a
one-statement heartbeat every ``HEARTBEAT_SECONDS``, so admin knows which
servers are alive). When the database is away the counts stay in memory
(bounded) and are written once it is back; the failure is logged once per
outage.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DataError, connection, connections, router, transaction
from django.db.models import Case, F, Field, Q, QuerySet, Value, When

from whitelist.conf import conf
from whitelist.core.outages import OutageLog
from whitelist.records import RefusedConnect, RuleActivity
from whitelist.reporting.tallies import (
    AdmissionCounters,
    RefusalKey,
    RefusalTallies,
    Tally,
    busiest,
)

logger = logging.getLogger(__name__)

# Rule activity is written at most this often (admin's "recently" needs no more), and
# every HEARTBEAT_SECONDS even unchanged, so that admin knows which servers are alive.
ACTIVITY_SECONDS = 5.0
HEARTBEAT_SECONDS = 10.0
# Admin counts a server's activity as current while its last report is this recent.
ALIVE_SECONDS = 3 * HEARTBEAT_SECONDS
PRUNE_SECONDS = 60.0
# A server that writes nothing still prunes old rows, less often.
IDLE_PRUNE_SECONDS = 3600.0
# Activity rows of servers gone this long are deleted.
FORGET_NODE_SECONDS = 24 * 3600
# Refusal rows one flush writes, besides one overflow row per reason; and per statement
# (nine variables a row in the update: well under SQLite's oldest limit of 999).
ROWS_PER_FLUSH = 100
BATCH = 50
# Databases whose upsert adds a count in one statement; others select, insert and update.
UPSERT_VENDORS = ("sqlite", "postgresql")
# The columns an upsert writes besides the key (the last three follow the latest attempt).
_ADDED = ("count", "first_seen", "last_seen", "last_address", "last_user_agent")


def node_name() -> str:
    """This server process, as admin names it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def _at(timestamp: float) -> datetime:
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
    with transaction.atomic(using=alias):
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
            _at(tally.first_seen),
            _at(tally.last_seen),
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
                    first_seen=_at(batch[key].first_seen),
                    last_seen=_at(batch[key].last_seen),
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
        last_seen=per_row("last_seen", lambda tally: _at(tally.last_seen)),
        last_address=per_row("last_address", lambda tally: tally.address),
        last_user_agent=per_row("last_user_agent", lambda tally: tally.user_agent),
    )


def prune_refusals(now: float) -> int:
    """Delete rows not seen for ``WHITELIST_REFUSAL_LOG_MAX_AGE`` days, then the least recent
    beyond ``WHITELIST_REFUSAL_LOG_MAX_ROWS``. Returns how many went."""
    cutoff = _at(now) - timedelta(days=conf.WHITELIST_REFUSAL_LOG_MAX_AGE)
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


def write_activity(
    node: str, changed: dict[str, tuple[int, int]], now: float, *, heartbeat: bool
) -> None:
    """Store this server's changed (open now, admitted recently) per rule in one statement,
    and with ``heartbeat`` mark all its rows as current in another."""
    alias = router.db_for_write(RuleActivity)
    rows = RuleActivity.objects.using(alias)
    with transaction.atomic(using=alias):
        if changed:
            rows.bulk_create(
                [
                    RuleActivity(
                        node=node,
                        pattern=pattern,
                        open_now=open_now,
                        admitted_recently=admitted,
                        reported_at=_at(now),
                    )
                    for pattern, (open_now, admitted) in changed.items()
                ],
                update_conflicts=True,
                unique_fields=["node", "pattern"],
                update_fields=["open_now", "admitted_recently", "reported_at"],
            )
        if heartbeat:
            rows.filter(node=node).update(reported_at=_at(now))


class Recorder:
    """The counts one server keeps between flushes, and the flush itself."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.refusals = RefusalTallies(clock=clock)
        self.admissions = AdmissionCounters(clock=clock)
        self.node = node_name()
        self._clock = clock
        self._written: dict[str, tuple[int, int]] = {}
        self._last_heartbeat = 0.0
        self._last_activity = 0.0
        self._last_prune = clock()
        self._written_since_prune = False
        self._flushing = threading.Lock()
        self._outage = OutageLog(
            logger,
            "Could not write the refusal log; counts kept in memory",
            "The refusal log is written again",
        )

    def flush(self, open_by_rule: Counter[str]) -> bool:
        """Write what was counted; False (and the counts kept) if the database failed.

        One flush at a time: the last one, as the server stops, waits for the
        flusher's flush in flight (writing off the loop, it may take a while),
        which the process would otherwise end with its counts unwritten.
        """
        with self._flushing:
            return self._flush(open_by_rule)

    def _flush(self, open_by_rule: Counter[str]) -> bool:
        now = self._clock()
        taken = busiest(self.refusals.take(), ROWS_PER_FLUSH)
        try:
            if taken and conf.WHITELIST_REFUSAL_LOG:
                write_refusals(taken)
                cap_refusals()  # the row limit holds after every flush
                self._written_since_prune = True
            taken = {}
            self._flush_activity(open_by_rule, now)
            since = now - self._last_prune
            if (
                self._written_since_prune and since >= PRUNE_SECONDS
            ) or since >= IDLE_PRUNE_SECONDS:
                prune_refusals(now)
                forgotten = _at(now - FORGET_NODE_SECONDS)  # servers gone for a day
                RuleActivity.objects.filter(reported_at__lt=forgotten).delete()
                self._last_prune, self._written_since_prune = now, False
        except Exception:
            self.refusals.put_back(taken)
            self._outage.failed()
            connection.close()
            return False
        self._outage.succeeded()
        return True

    def _flush_activity(self, open_by_rule: Counter[str], now: float) -> None:
        if now - self._last_activity < ACTIVITY_SECONDS:
            return
        recent = self.admissions.recent()
        numbers = {
            pattern: (open_by_rule.get(pattern, 0), recent.get(pattern, 0))
            for pattern in {*open_by_rule, *recent, *self._written}
            if pattern
        }
        heartbeat = now - self._last_heartbeat >= HEARTBEAT_SECONDS
        changed = {
            pattern: value
            for pattern, value in numbers.items()
            if self._written.get(pattern, (0, 0)) != value
        }
        self._last_activity = now
        if not changed and not (heartbeat and self._written):
            return
        write_activity(self.node, changed, now, heartbeat=heartbeat)
        self._written = {pattern: value for pattern, value in numbers.items() if any(value)}
        if heartbeat:
            self._last_heartbeat = now
