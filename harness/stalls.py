"""Probes for stalls of a live server's event loop: round trips, handshakes, refusals, a held lock.

Used by the tests of issue 18's database findings and by ``bench/database_stalls.py``.
Every probe runs in a thread of its own until told to stop, and keeps the worst
latency it saw (with when), so that a test can assert a bound and print the figure.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
import websocket

# Holds a lock on an SQLite file: the write lock (what an admin action, a migration or the
# sqlite3 shell does), or a reader's (a read transaction in the sqlite3 shell or a report).
_LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute(sys.argv[3])
db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


@contextlib.contextmanager
def sqlite_write_lock(database: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``database``'s write lock for ``seconds`` from when this yields."""
    with _sqlite_lock(database, seconds, "BEGIN IMMEDIATE") as holder:
        yield holder


@contextlib.contextmanager
def sqlite_read_lock(database: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process reads ``database`` in one transaction for ``seconds``: in SQLite's
    rollback-journal mode no commit can end until it does (in WAL mode, any can)."""
    with _sqlite_lock(database, seconds, "BEGIN") as holder:
        yield holder


@contextlib.contextmanager
def _sqlite_lock(database: Path, seconds: float, begin: str) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(database), str(seconds), begin],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held", "the lock holder failed"
        yield holder
    finally:
        holder.wait(timeout=seconds + 30)
        if holder.stdout is not None:
            holder.stdout.close()


class Probe(threading.Thread):
    """Repeat ``measure`` every ``pause`` seconds; keep every latency, and the worst."""

    def __init__(self, measure: Callable[[], None], pause: float) -> None:
        super().__init__(daemon=True)
        self._measure = measure
        self._pause = pause
        self._stopping = threading.Event()
        self.latencies: list[tuple[float, float]] = []  # (started at, seconds)
        self.errors: list[str] = []

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._measure()
            except Exception as exc:  # a stalled server times out: that is a finding too
                self.errors.append(repr(exc))
            self.latencies.append((started, time.monotonic() - started))
            self._stopping.wait(self._pause)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)

    def worst(self, since: float = 0.0) -> float:
        """The worst latency (seconds) of the measurements started after ``since``."""
        return max((seconds for at, seconds in self.latencies if at >= since), default=0.0)


class RoundTrips(Probe):
    """An open, welcomed socket on ``namespace`` sending ``event`` and waiting for its ack."""

    def __init__(
        self,
        url: str,
        origin: str,
        namespace: str = "/late",
        event: str = "echo",
        pause: float = 0.02,
    ) -> None:
        self.ws = websocket.create_connection(
            url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
            origin=origin,
            timeout=30,
        )
        assert self.ws.recv().startswith("0")
        self.ws.send(f"40{namespace},")
        self._namespace = namespace
        self._event = event
        self._ids = itertools.count(1)
        self._wait_for(f"40{namespace},")
        super().__init__(self._round_trip, pause)

    def _wait_for(self, prefix: str) -> str:
        while True:
            message = self.ws.recv()
            if message == "2":  # Engine.IO ping
                self.ws.send("3")
            elif isinstance(message, str) and message.startswith(prefix):
                return message

    def _round_trip(self) -> None:
        number = next(self._ids)
        self.ws.send(f"42{self._namespace},{number}{json.dumps([self._event, number])}")
        self._wait_for(f"43{self._namespace},{number}")

    def stop(self) -> None:
        super().stop()
        self.ws.close()
        self.ws.shutdown()  # close() leaves the socket open once the server has closed it


class Handshakes(Probe):
    """A new visitor's Engine.IO handshake from ``origin``, again and again."""

    def __init__(self, url: str, origin: str, pause: float = 0.05) -> None:
        def handshake() -> None:
            response = requests.get(
                f"{url}/socket.io/",
                params={"EIO": "4", "transport": "polling"},
                headers={"Origin": origin},
                timeout=30,
            )
            response.raise_for_status()

        super().__init__(handshake, pause)


class Refusals(threading.Thread):
    """Refused Socket.IO connects over WebSocket, from ``origin_of(n)``; counts those refused."""

    def __init__(self, url: str, origin_of: Callable[[int], str], pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self._endpoint = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self._origin_of = origin_of
        self._pause = pause
        self._stopping = threading.Event()
        self.refused = 0
        self.errors: list[str] = []

    def run(self) -> None:
        number = 0
        while not self._stopping.is_set():
            number += 1
            try:
                ws = websocket.create_connection(
                    self._endpoint, origin=self._origin_of(number), timeout=30
                )
                try:
                    assert ws.recv().startswith("0")
                    ws.send("40")
                    answer = ws.recv()
                    if answer.startswith("44"):
                        self.refused += 1
                finally:
                    ws.close()
                    ws.shutdown()  # close() leaves it open once the server has closed it
            except Exception as exc:
                self.errors.append(repr(exc))
            if self._pause:
                self._stopping.wait(self._pause)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=60)


@contextlib.contextmanager
def running(*threads: threading.Thread) -> Iterator[None]:
    """Start every probe; stop each when the block ends."""
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.stop()  # type: ignore[attr-defined]
