"""The database never stalls the sockets of a live server (issue 18).

The real runsocket on an SQLite file (and PostgreSQL): another process holds
the write lock while refused connects flow, so the refusal log's flush has to
wait for it; and a flood of refusals from invented origins, which the flush
must write without holding up anyone.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from harness.commands import command_on
from harness.live import LiveServer, manage, migrated_copy, wait_until
from harness.services import PostgresServer
from harness.stalls import (
    Handshakes,
    Refusals,
    RoundTrips,
    running,
    sqlite_read_lock,
    sqlite_write_lock,
)
from tests.admin_session import add_superuser, logged_in
from tests.conftest import ALLOWED
from whitelist.reporting.flushing import ROWS_PER_FLUSH

LOCK_SECONDS = 3.0  # six times the bound: a stall for the lock shows
BOUND = 0.5  # seconds: the bound for a handshake or a round trip under a lock
FLOOD_BOUND = 0.05  # ... and for a round trip under a flood of invented origins
FLOOD_REFUSALS = 2000  # a few flushes' worth, each past the rows a flush writes

# The bounds are the issue's, for a server with the machine to itself: not beside other
# test files' servers (make test runs these after the parallel tests).
pytestmark = pytest.mark.alone


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


@pytest.fixture
def rollback_journal_server(migrated_template: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A runsocket on SQLite as a project that never turned WAL on has it (rollback journal,
    deferred transactions, 5 s timeout), refusing by the hundred a second."""
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    with closing(sqlite3.connect(database)) as db:
        (mode,) = db.execute("PRAGMA journal_mode=DELETE").fetchone()
    assert mode == "delete"
    server = LiveServer(
        database,
        tmp_path / "server.log",
        WHITELIST_CONNECT_RATE="off",
        GUARDSITE_TEST_SQLITE_DEFAULTS="1",
    ).start()
    yield server
    server.stop()


def test_a_reader_elsewhere_in_rollback_journal_mode_stalls_no_socket(
    rollback_journal_server: LiveServer,
) -> None:
    """The flush committed on the loop: in rollback-journal mode a commit waits for every
    reader, so the whole server froze behind another process's read (and behind one of its
    own green threads' reads, until the timeout failed the flush)."""
    server = rollback_journal_server
    refused_origin = "https://refused-during-read.test"
    trips = RoundTrips(server.url, ALLOWED)
    refusals = Refusals(server.url, lambda number: refused_origin, pause=0.01)
    with running(trips, refusals):
        assert wait_until(lambda: refusals.refused >= 20 and len(trips.latencies) >= 20)
        locked_at = time.monotonic()
        with sqlite_read_lock(server.database, LOCK_SECONDS):
            time.sleep(LOCK_SECONDS)  # the flush every second has rows to commit
        time.sleep(1.0)
    assert not (trips.errors or refusals.errors), (trips.errors + refusals.errors)[:3]
    worst = trips.worst(locked_at)
    assert worst < BOUND, f"a round trip took {worst * 1000:.0f} ms"
    sent = refusals.refused
    assert wait_until(lambda: logged_attempts(server.database, refused_origin) == sent, 30), (
        f"logged {logged_attempts(server.database, refused_origin)} of {sent} refusals"
    )
    assert "Could not write the refusal log" not in server.log()


def flood_round_trips(server: LiveServer) -> tuple[float, int, list[str]]:
    """Refusals from invented origins: (worst round trip meanwhile, refusals, errors)."""
    began = time.monotonic()
    trips = RoundTrips(server.url, ALLOWED)
    floods = [
        Refusals(server.url, lambda number, thread=thread: f"https://x{thread}-{number}.flood.test")
        for thread in range(4)
    ]
    with running(trips), running(*floods):
        wait_until(lambda: sum(each.refused for each in floods) >= FLOOD_REFUSALS, 60)
    errors = trips.errors + [error for each in floods for error in each.errors]
    return trips.worst(began), sum(each.refused for each in floods), errors


def most_rows(since: float) -> int:
    """What flushes since ``since`` may write: ROWS_PER_FLUSH origins each (one flush a
    second, one more as the server stops), the rest added to a few overflow rows. A rate
    does not hold: beside a CPU hog the same flood spans more flushes."""
    flushes = int(time.monotonic() - since) + 2
    return flushes * ROWS_PER_FLUSH + 10


def test_a_flood_of_invented_origins_stalls_no_socket_on_sqlite(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(ALLOWED, WHITELIST_CONNECT_RATE="off")
    began = time.monotonic()
    worst, sent, errors = flood_round_trips(server)
    assert not errors, errors[:3]
    assert sent >= FLOOD_REFUSALS
    assert worst < FLOOD_BOUND, f"a round trip took {worst * 1000:.0f} ms during {sent} refusals"

    def logged() -> tuple[int, int]:
        with closing(sqlite3.connect(server.database, timeout=30)) as db:
            return db.execute(
                "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM whitelist_refusedconnect"
            ).fetchone()

    assert wait_until(lambda: logged()[1] == sent, 30), f"logged {logged()} of {sent}"
    assert logged()[0] <= most_rows(began)  # the rest in the overflow row


@pytest.fixture
def postgres_database(postgres: PostgresServer, tmp_path: Path) -> dict[str, str]:
    """A migrated PostgreSQL database of this test alone, with one rule."""
    name = f"flood{int(time.time() * 1000)}"
    connection = postgres.connect()
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    env = {"DATABASE_URL": postgres.url.rsplit("/", 1)[0] + f"/{name}"}
    for command in (("migrate", "--no-input", "-v0"), ("whitelist", "add", ALLOWED)):
        result = manage(tmp_path / "unused.sqlite3", *command, **env)
        assert result.returncode == 0, result.stderr
    return env


def test_a_flood_of_invented_origins_stalls_no_socket_on_postgresql(
    postgres_database: dict[str, str], postgres: PostgresServer, tmp_path: Path
) -> None:
    server = LiveServer(
        tmp_path / "unused.sqlite3",
        tmp_path / "server.log",
        WHITELIST_CONNECT_RATE="off",
        **postgres_database,
    ).start()
    began = time.monotonic()
    try:
        worst, sent, errors = flood_round_trips(server)
    finally:
        server.stop()  # the last counts are written as it stops
    assert not errors, errors[:3]
    assert sent >= FLOOD_REFUSALS
    assert worst < FLOOD_BOUND, f"a round trip took {worst * 1000:.0f} ms during {sent} refusals"
    name = postgres_database["DATABASE_URL"].rsplit("/", 1)[1]
    connection = postgres.connect(name)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), SUM(count) FROM whitelist_refusedconnect")
            rows, attempts = cursor.fetchone()
    finally:
        connection.close()
    assert (attempts, rows <= most_rows(began)) == (sent, True), server.log()[-3000:]


def test_a_page_writing_under_a_lock_held_elsewhere_stalls_no_socket(
    start_server: Callable[..., LiveServer],
) -> None:
    """A login's writes ran on the loop: waiting for the lock there froze every socket (and,
    beside the server's own flush between two statements, deadlocked until the timeout)."""
    server = start_server(ALLOWED)
    add_superuser(server, "ann", "anns-long-password")
    trips = RoundTrips(server.url, ALLOWED)
    with running(trips):
        assert wait_until(lambda: len(trips.latencies) >= 20)
        locked_at = time.monotonic()
        with sqlite_write_lock(server.database, LOCK_SECONDS):
            session = logged_in(server, "ann", "anns-long-password", timeout=30)
        session.close()
        time.sleep(1.0)
    assert not trips.errors, trips.errors[:3]
    worst = trips.worst(locked_at)
    assert worst < BOUND, f"a round trip took {worst * 1000:.0f} ms while a login waited"
