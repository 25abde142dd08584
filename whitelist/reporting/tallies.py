"""In-memory counts between two flushes to the database: refusals, and admissions per rule.

The connect path adds to a dict under a lock and nothing more. Memory is
bounded: past ``max_keys`` distinct refusals, new origins are counted together
under ``OTHER_ORIGINS``, so a flood of invented origins costs one row, and no
attempt goes uncounted. Values are stored without control characters. Pure
Python, no Django.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from whitelist.engine.locks import bookkeeping_lock

# The namespace of a refusal at the handshake, before any namespace was named.
HANDSHAKE = ""
OTHER_ORIGINS = "(other origins)"
OTHER_NAMESPACES = "(other)"
MAX_ORIGIN = 300
MAX_NAMESPACE = 100
MAX_ADDRESS = 64
MAX_USER_AGENT = 300
# Control characters (NUL above all: PostgreSQL refuses it) are stored as U+FFFD.
_PRINTABLE = dict.fromkeys((*range(0x20), 0x7F), "\N{REPLACEMENT CHARACTER}")


def _stored(value: str, limit: int) -> str:
    """``value`` as a column can hold it: no control characters, at most ``limit`` long."""
    return value[:limit].translate(_PRINTABLE)


class RefusalKey(NamedTuple):
    origin: str
    reason: str
    namespace: str
    report_only: bool


@dataclass(slots=True)
class Tally:
    """Attempts under one key since the last flush."""

    count: int
    first_seen: float
    last_seen: float
    address: str
    user_agent: str

    def merge(self, newer: Tally) -> None:
        self.count += newer.count
        self.first_seen = min(self.first_seen, newer.first_seen)
        if newer.last_seen >= self.last_seen:
            self.last_seen, self.address = newer.last_seen, newer.address
            self.user_agent = newer.user_agent


def overflow_key(key: RefusalKey) -> RefusalKey:
    """Where an attempt goes once its origin has no room of its own: one per reason."""
    return RefusalKey(OTHER_ORIGINS, key.reason, OTHER_NAMESPACES, key.report_only)


def busiest(tallies: dict[RefusalKey, Tally], keep: int) -> dict[RefusalKey, Tally]:
    """The ``keep`` keys with the most attempts as they are; the rest merged by reason.

    What a flush writes: a flood of invented origins (one attempt each) ends in
    the overflow rows, while an origin refused again and again keeps its own
    row. At most ``keep`` keys plus one overflow key per (reason, report-only).
    """
    if len(tallies) <= keep:
        return tallies
    ranked = sorted(
        tallies.items(),
        key=lambda item: (item[0].origin != OTHER_ORIGINS, item[1].count, item[1].last_seen),
        reverse=True,
    )
    kept = dict(ranked[:keep])
    for key, tally in ranked[keep:]:
        other = overflow_key(key)
        current = kept.get(other)
        if current is None:
            kept[other] = Tally(
                tally.count, tally.first_seen, tally.last_seen, tally.address, tally.user_agent
            )
        else:
            current.merge(tally)
    return kept


class RefusalTallies:
    """Refused connects aggregated by (origin, reason, namespace, report-only)."""

    def __init__(self, max_keys: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self.max_keys = max_keys
        self._clock = clock
        self._tallies: dict[RefusalKey, Tally] = {}
        self._lock = bookkeeping_lock()

    def add(
        self,
        origin: str | None,
        reason: str,
        namespace: str,
        report_only: bool,
        address: str,
        user_agent: str,
    ) -> None:
        now = self._clock()
        origin = _stored(origin or "", MAX_ORIGIN)
        key = RefusalKey(origin, reason, _stored(namespace, MAX_NAMESPACE), report_only)
        address, user_agent = _stored(address, MAX_ADDRESS), _stored(user_agent, MAX_USER_AGENT)
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None and len(self._tallies) >= self.max_keys:
                key = overflow_key(key)
                tally = self._tallies.get(key)
            if tally is None:
                self._tallies[key] = Tally(1, now, now, address, user_agent)
            else:
                tally.count += 1
                tally.last_seen = now
                tally.address = address
                tally.user_agent = user_agent

    def take(self) -> dict[RefusalKey, Tally]:
        """Everything counted so far; the counts start again from zero."""
        with self._lock:
            taken, self._tallies = self._tallies, {}
        return taken

    def put_back(self, tallies: dict[RefusalKey, Tally]) -> None:
        """Return counts a flush could not write; merged, and still bounded."""
        with self._lock:
            for key, tally in tallies.items():
                if key not in self._tallies and len(self._tallies) >= self.max_keys:
                    key = overflow_key(key)
                current = self._tallies.get(key)
                if current is None:
                    self._tallies[key] = tally
                else:
                    current.merge(tally)

    def __len__(self) -> int:
        return len(self._tallies)


class AdmissionCounters:
    """Sockets admitted per rule, in one-minute buckets over the last ``minutes``."""

    def __init__(self, minutes: int = 60, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: deque[tuple[int, Counter[str]]] = deque(maxlen=minutes)
        self._minutes = minutes
        self._lock = bookkeeping_lock()

    def admitted(self, rule: str | None) -> None:
        minute = int(self._clock() // 60)
        key = rule or ""
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != minute:
                self._buckets.append((minute, Counter()))
            self._buckets[-1][1][key] += 1

    def recent(self) -> Counter[str]:
        """Admissions per rule in the last ``minutes`` minutes."""
        oldest = int(self._clock() // 60) - self._minutes + 1
        total: Counter[str] = Counter()
        with self._lock:
            for minute, counts in self._buckets:
                if minute >= oldest:
                    total.update(counts)
        return total
