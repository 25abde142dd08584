"""The in-memory allowlist snapshot that the connect path reads.

The connect path never queries the database once a snapshot is loaded. A change
made in this process drops the snapshot when its transaction commits; a change
made by any other process is picked up by ``watch``, which compares the
revision number every ``WHITELIST_REFRESH_INTERVAL`` seconds. Every read runs
off eventlet's loop (``whitelist.engine.blocking``): a database lock held
elsewhere stalls only the reader, and the last snapshot stays in force meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection, connections, transaction

from whitelist.core.index import AllowlistIndex
from whitelist.core.outages import OutageLog
from whitelist.engine.blocking import off_the_loop
from whitelist.rules.changes import refresh_interval, rules_database
from whitelist.rules.configured import index_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The enabled rules as of one revision."""

    revision: int
    index: AllowlistIndex


# A stalled database (a lock held on the revision row, say) fails the read after this
# long, so the watcher logs it and keeps the last rules instead of waiting for good.
STATEMENT_TIMEOUT_MS = 2000


@contextlib.contextmanager
def bounded_statements(alias: str) -> Iterator[None]:
    """On PostgreSQL, give the enclosed reads a statement timeout, in a transaction of their own."""
    connection = connections[alias]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [str(STATEMENT_TIMEOUT_MS)])
        yield


def load_snapshot() -> Snapshot:
    """Read the revision, then the rules (in that order, so no change is missed)."""
    from whitelist.models import AllowedOrigin

    alias = rules_database()
    with off_the_loop(), bounded_statements(alias):
        revision = read_revision()
        rows = list(
            AllowedOrigin.objects.using(alias).enabled().values_list("pattern", "namespaces")
        )
    indexed = index_rows(rows)
    if indexed.skipped:
        skipped = indexed.skipped
        logger.error("Ignoring %d unusable allowlist rule(s): %s", len(skipped), skipped)
    return Snapshot(revision, indexed.index)


def read_revision() -> int:
    """The rules' revision, read where rules are written: a lagging replica never hides one."""
    from whitelist.models import AllowlistRevision

    alias = rules_database()
    with off_the_loop(), bounded_statements(alias):
        return AllowlistRevision.current(using=alias)


class AllowlistCache:
    """Holds the current snapshot; loads it on first use and when it is dropped."""

    def __init__(
        self,
        load: Callable[[], Snapshot] = load_snapshot,
        revision: Callable[[], int] = read_revision,
    ) -> None:
        self._load = load
        self._revision = revision
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._watch_outage = OutageLog(
            logger,
            "Allowlist refresh failed; keeping the last rules",
            "Allowlist refresh works again",
        )
        # Failed refreshes of the watcher, for the metrics.
        self.watch_failures = 0

    def snapshot(self) -> Snapshot:
        """The current snapshot, loading it if there is none (may raise)."""
        snapshot = self._snapshot
        if snapshot is None:
            with self._lock:
                snapshot = self._snapshot
                if snapshot is None:
                    snapshot = self._snapshot = self._load()
        return snapshot

    def loaded_revision(self) -> int | None:
        """The revision of the snapshot in memory, without loading one (None if none)."""
        snapshot = self._snapshot
        return None if snapshot is None else snapshot.revision

    def loaded(self) -> Snapshot | None:
        """The snapshot in memory, without loading one."""
        return self._snapshot

    def invalidate(self) -> None:
        """Forget the snapshot: the next decision reloads it."""
        self._snapshot = None

    def refresh(self) -> bool:
        """Reload if another process changed the rules; True when it did."""
        current = self._snapshot
        if current is not None and self._revision() == current.revision:
            return False
        with self._lock:
            self._snapshot = self._load()
        return True

    def watch(
        self,
        sleep: Callable[[float], object],
        *,
        stop: Callable[[], bool],
        on_change: Callable[[Snapshot], object] = lambda snapshot: None,
    ) -> None:
        """Refresh until ``stop()`` is true; run it as a background task of the server.

        ``on_change`` gets every snapshot of a revision it has not seen, however
        that snapshot was loaded (here, or by a connect after a change in this
        process); if it fails, it gets the same snapshot again next time.

        The watcher keeps its database connection between polls (one cheap query
        each). A failed refresh keeps the last snapshot (logged once per outage at
        ERROR, then at DEBUG) and closes the connection so the next try reconnects.
        """
        seen = self._snapshot.revision if self._snapshot is not None else None
        while not stop():
            sleep(refresh_interval())
            if stop():
                break
            try:
                self.refresh()
                snapshot = self.snapshot()
                if snapshot.revision != seen:
                    logger.info(
                        "Allowlist revision %d: %d rule(s)", snapshot.revision, len(snapshot.index)
                    )
                    on_change(snapshot)
                    seen = snapshot.revision
                self._watch_outage.succeeded()
            except Exception:
                self._watch_outage.failed()
                self.watch_failures += 1
                connection.close()


allowlist = AllowlistCache()
