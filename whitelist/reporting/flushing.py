"""Write the in-memory counts (``reporting.tallies``) to the database, off the connect path.

A background task of the server calls ``Recorder.flush`` every
``WHITELIST_FLUSH_INTERVAL`` seconds. The refusals cost a fixed number of
statements however many origins a flood invents: the ``ROWS_PER_FLUSH`` busiest
keep their own rows, the rest are added to one overflow row per reason, and
the rows are written a batch a statement (``whitelist.reporting.refusal_rows``).
Each flush enforces ``WHITELIST_REFUSAL_LOG_MAX_ROWS`` at once. The rule activity that changed is
written at most every ``ACTIVITY_SECONDS``, in one statement (with a
one-statement heartbeat every ``HEARTBEAT_SECONDS``, so admin knows which
servers are alive). When the database is away the counts stay in memory
(bounded) and are written once it is back; the failure is logged once per
outage.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

from django.db import connection, router

from whitelist.conf import conf
from whitelist.core.outages import OutageLog
from whitelist.engine.blocking import atomic_off_the_loop
from whitelist.records import RuleActivity
from whitelist.reporting.refusal_rows import at, cap_refusals, prune_refusals, write_refusals
from whitelist.reporting.tallies import (
    AdmissionCounters,
    RefusalTallies,
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
# Refusal rows one flush writes, besides one overflow row per reason.
ROWS_PER_FLUSH = 100


def node_name() -> str:
    """This server process, as admin names it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def write_activity(
    node: str, changed: dict[str, tuple[int, int]], now: float, *, heartbeat: bool
) -> None:
    """Store this server's changed (open now, admitted recently) per rule in one statement,
    and with ``heartbeat`` mark all its rows as current in another."""
    alias = router.db_for_write(RuleActivity)
    rows = RuleActivity.objects.using(alias)
    with atomic_off_the_loop(alias):
        if changed:
            rows.bulk_create(
                [
                    RuleActivity(
                        node=node,
                        pattern=pattern,
                        open_now=open_now,
                        admitted_recently=admitted,
                        reported_at=at(now),
                    )
                    for pattern, (open_now, admitted) in changed.items()
                ],
                update_conflicts=True,
                unique_fields=["node", "pattern"],
                update_fields=["open_now", "admitted_recently", "reported_at"],
            )
        if heartbeat:
            rows.filter(node=node).update(reported_at=at(now))


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
        wrote = False
        try:
            if taken and conf.WHITELIST_REFUSAL_LOG:
                write_refusals(taken)
                cap_refusals()  # the row limit holds after every flush
                self._written_since_prune = wrote = True
            taken = {}
            wrote |= self._flush_activity(open_by_rule, now)
            since = now - self._last_prune
            if (
                self._written_since_prune and since >= PRUNE_SECONDS
            ) or since >= IDLE_PRUNE_SECONDS:
                prune_refusals(now)
                forgotten = at(now - FORGET_NODE_SECONDS)  # servers gone for a day
                RuleActivity.objects.filter(reported_at__lt=forgotten).delete()
                self._last_prune, self._written_since_prune = now, False
                wrote = True
        except Exception:
            self.refusals.put_back(taken)
            self._outage.failed()
            connection.close()
            return False
        if wrote:  # a flush that wrote nothing cannot tell whether the database is back
            self._outage.succeeded()
        return True

    def _flush_activity(self, open_by_rule: Counter[str], now: float) -> bool:
        """Write the rule activity if due and changed (or a heartbeat); True if it wrote."""
        if now - self._last_activity < ACTIVITY_SECONDS:
            return False
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
            return False
        write_activity(self.node, changed, now, heartbeat=heartbeat)
        self._written = {pattern: value for pattern, value in numbers.items() if any(value)}
        if heartbeat:
            self._last_heartbeat = now
        return True
