"""Prometheus metrics of the guard, read at scrape time (prometheus-client).

The connect path only adds one to a dict entry; everything else (open sockets,
sessions, rules, revision, watcher failures) is read from the server's own
state when Prometheus scrapes, so a metric costs nothing between scrapes.
Namespace labels are the namespaces the server registered, else ``(other)``:
a client chooses the namespace it names, and must not choose label values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from whitelist.engine import sockets
from whitelist.engine.locks import bookkeeping_lock
from whitelist.rules.cache import AllowlistCache

OTHER_NAMESPACE = "(other)"


class GuardMetrics(Collector):
    """Counts of the guard's decisions, and the server's state, as Prometheus metrics."""

    def __init__(self, server: Any, cache: AllowlistCache) -> None:
        self.server = server
        self.cache = cache
        self._connects: Counter[tuple[str, str, str]] = Counter()
        self._lock = bookkeeping_lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def count_connect(self, outcome: str, reason: str, namespace: str) -> None:
        """One connect decided: ``outcome`` is ``admitted`` or ``refused``."""
        if namespace not in self.server.handled_namespaces and namespace != "/":
            namespace = OTHER_NAMESPACE
        with self._lock:
            self._connects[(outcome, reason, namespace)] += 1

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Any]:
        connects = CounterMetricFamily(
            "whitelist_connects",
            "Socket.IO connects decided by the guard",
            labels=["outcome", "reason", "namespace"],
        )
        with self._lock:
            counts = list(self._connects.items())
        for labels, count in sorted(counts):
            connects.add_metric(list(labels), count)
        yield connects
        yield GaugeMetricFamily(
            "whitelist_open_sockets",
            "Sockets the guard admitted, open now",
            value=len(self.server.open_sockets),
        )
        yield GaugeMetricFamily(
            "whitelist_engineio_sessions",
            "Engine.IO sessions open now",
            value=sockets.session_count(self.server.eio),
        )
        snapshot = self.cache.loaded()
        if snapshot is not None:
            yield GaugeMetricFamily(
                "whitelist_rules", "Enabled rules in force", value=len(snapshot.index)
            )
            yield GaugeMetricFamily(
                "whitelist_revision", "Revision of the rules in force", value=snapshot.revision
            )
        yield CounterMetricFamily(
            "whitelist_watcher_failures",
            "Failed reads of the rules by the watcher (the last rules stay in force)",
            value=self.cache.watch_failures,
        )
