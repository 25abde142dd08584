"""Write the in-memory counts (``reporting.tallies``) to the database, off the connect path.

A background task of the server calls ``Recorder.flush`` every
``WHITELIST_FLUSH_INTERVAL`` seconds: each refusal row gets at most one write,
and the rule activity that changed is written at most every ``ACTIVITY_SECONDS``,
in one statement (with a one-statement heartbeat every ``HEARTBEAT_SECONDS``, so
admin knows which servers are alive). When the database is away the counts
stay in memory (bounded) and are written once it is back; the failure is
logged once per outage.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import DataError, IntegrityError, connection, router, transaction
from django.db.models import F, Q

from whitelist.conf import conf
from whitelist.core.outages import OutageLog
from whitelist.records import RefusedConnect, RuleActivity
from whitelist.reporting.tallies import AdmissionCounters, RefusalKey, RefusalTallies, Tally

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


def node_name() -> str:
    """This server process, as admin names it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def write_refusals(tallies: dict[RefusalKey, Tally]) -> None:
    """Add each tally to its row (one UPDATE, or one INSERT for a new key), atomically.

    A tally the database refuses as data (which ``whitelist.reporting.tallies`` should
    have made impossible) is logged and dropped, so it cannot block the others
    for good; an outage raises, and the caller keeps every count.
    """
    alias = router.db_for_write(RefusedConnect)
    with transaction.atomic(using=alias):
        for key, tally in tallies.items():
            try:
                with transaction.atomic(using=alias):
                    _write_refusal(alias, key, tally)
            except (DataError, ValueError):
                logger.warning("Dropped an unstorable refusal log entry %r", key, exc_info=True)


def _write_refusal(alias: str, key: RefusalKey, tally: Tally) -> None:
    rows = RefusedConnect.objects.using(alias).filter(**key._asdict())
    changes = {
        "count": F("count") + tally.count,
        "last_seen": _at(tally.last_seen),
        "last_address": tally.address,
        "last_user_agent": tally.user_agent,
    }
    if rows.update(**changes):
        return
    try:
        with transaction.atomic(using=alias):  # another server may insert it first
            RefusedConnect.objects.using(alias).create(
                **key._asdict(),
                count=tally.count,
                first_seen=_at(tally.first_seen),
                last_seen=_at(tally.last_seen),
                last_address=tally.address,
                last_user_agent=tally.user_agent,
            )
    except IntegrityError:
        rows.update(**changes)


def prune_refusals(now: float) -> int:
    """Delete rows not seen for ``WHITELIST_REFUSAL_LOG_MAX_AGE`` days, then the least recent
    beyond ``WHITELIST_REFUSAL_LOG_MAX_ROWS``. Returns how many went."""
    rows = RefusedConnect.objects.all()
    cutoff = _at(now) - timedelta(days=conf.WHITELIST_REFUSAL_LOG_MAX_AGE)
    deleted, _ = rows.filter(last_seen__lt=cutoff).delete()
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
        self._outage = OutageLog(
            logger,
            "Could not write the refusal log; counts kept in memory",
            "The refusal log is written again",
        )

    def flush(self, open_by_rule: Counter[str]) -> bool:
        """Write what was counted; False (and the counts kept) if the database failed."""
        now = self._clock()
        taken = self.refusals.take()
        try:
            if taken and conf.WHITELIST_REFUSAL_LOG:
                write_refusals(taken)
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
