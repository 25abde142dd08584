"""A database lock held elsewhere never stalls the sockets of a live server (issue 18).

The real runsocket on an SQLite file: another process holds the write lock
while refused connects flow, so the refusal log's flush has to wait for it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from harness.live import LiveServer, wait_until
from harness.stalls import Handshakes, Refusals, RoundTrips, running, sqlite_write_lock
from tests.conftest import ALLOWED

LOCK_SECONDS = 6.0
BOUND = 0.5  # seconds: the bound for a handshake or a round trip


def logged_attempts(database: Path, origin: str) -> int:
    with closing(sqlite3.connect(database, timeout=30)) as db:
        (attempts,) = db.execute(
            "SELECT COALESCE(SUM(count), 0) FROM whitelist_refusedconnect WHERE origin = ?",
            [origin],
        ).fetchone()
    return attempts


def test_a_write_lock_held_elsewhere_stalls_no_socket_and_loses_no_refusal(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(ALLOWED, WHITELIST_CONNECT_RATE="off")  # all from 127.0.0.1
    refused_origin = "https://refused-during-lock.test"
    trips = RoundTrips(server.url, ALLOWED)
    handshakes = Handshakes(server.url, ALLOWED)
    refusals = Refusals(server.url, lambda number: refused_origin, pause=0.01)
    with running(trips, handshakes, refusals):
        assert wait_until(lambda: refusals.refused >= 20 and len(trips.latencies) >= 20)
        locked_at = time.monotonic()
        with sqlite_write_lock(server.database, LOCK_SECONDS):
            # Refusals keep coming: the flush every second must wait for the lock.
            time.sleep(LOCK_SECONDS)
        time.sleep(1.0)
    assert not (trips.errors or handshakes.errors or refusals.errors), (
        trips.errors + handshakes.errors + refusals.errors
    )[:3]
    worst_handshake, worst_trip = handshakes.worst(locked_at), trips.worst(locked_at)
    assert worst_handshake < BOUND, f"a handshake took {worst_handshake * 1000:.0f} ms"
    assert worst_trip < BOUND, f"a round trip took {worst_trip * 1000:.0f} ms"
    sent = refusals.refused
    assert wait_until(lambda: logged_attempts(server.database, refused_origin) == sent, 30), (
        f"logged {logged_attempts(server.database, refused_origin)} of {sent} refusals"
    )
