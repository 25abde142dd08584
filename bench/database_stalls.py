"""Does the database stall the event loop? Issue 18's two database findings, measured.

* ``lock``: another process holds SQLite's write lock for 6 s while refused
  connects flow; the worst new handshake and the worst round trip of an open
  socket during it, and whether the refusal log adds up to the refusals sent.
* ``flood``: refused connects from invented origins (no per-address limit); the
  worst round trip of an open socket, per 5 s window, and the refusal log's rows;
  on SQLite, or with ``--postgres`` on a PostgreSQL cluster of its own.

Standalone: ``.venv/bin/python bench/database_stalls.py [lock|flood] ...`` (about a
minute each). Results are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.live import LiveServer, manage  # noqa: E402
from harness.services import PostgresServer  # noqa: E402
from harness.stalls import (  # noqa: E402
    Handshakes,
    Refusals,
    RoundTrips,
    running,
    sqlite_write_lock,
)

ALLOWED = "http://allowed.test:8080"


COUNT_SQL = "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM whitelist_refusedconnect"


def refusal_log(server: LiveServer, postgres: PostgresServer | None = None) -> tuple[int, int]:
    """(rows, attempts) in the refusal log."""
    if postgres is not None:
        rows, attempts = postgres.query(COUNT_SQL)[0]
    else:
        with closing(sqlite3.connect(server.database, timeout=30)) as db:
            rows, attempts = db.execute(COUNT_SQL).fetchone()
    return int(rows), int(attempts)


def logged_once_flushed(
    server: LiveServer, expected: int, postgres: PostgresServer | None = None, timeout: float = 30
) -> tuple[int, int]:
    """The refusal log once it counts ``expected`` attempts, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    rows, attempts = refusal_log(server, postgres)
    while attempts < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        rows, attempts = refusal_log(server, postgres)
    return rows, attempts


def start(work: Path, name: str, **env: str) -> LiveServer:
    database = work / f"{name}.sqlite3"
    for command in (("migrate", "--no-input", "-v0"), ("whitelist", "add", ALLOWED)):
        result = manage(database, *command, **env)
        assert result.returncode == 0, result.stderr
    env.setdefault("GUARDSITE_LOG_LEVEL", "WARNING")
    return LiveServer(database, work / f"{name}.log", **env).start()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def lock(work: Path, held: float = 6.0) -> dict[str, Any]:
    server = start(work, "lock", WHITELIST_CONNECT_RATE="off")
    try:
        trips = RoundTrips(server.url, ALLOWED)
        handshakes = Handshakes(server.url, ALLOWED)
        refusals = Refusals(server.url, lambda n: "https://refused.test", pause=0.01)
        with running(trips, handshakes, refusals):
            time.sleep(2)
            locked_at = time.monotonic()
            with sqlite_write_lock(server.database, held):
                time.sleep(held)
            time.sleep(3)
        rows, attempts = logged_once_flushed(server, refusals.refused)
        return {
            "lock_seconds": held,
            "worst_handshake_ms": ms(handshakes.worst(locked_at)),
            "worst_round_trip_ms": ms(trips.worst(locked_at)),
            "worst_round_trip_before_lock_ms": ms(
                max((s for at, s in trips.latencies if at < locked_at), default=0)
            ),
            "refusals_sent": refusals.refused,
            "refusals_logged": attempts,
            "errors": (trips.errors + handshakes.errors + refusals.errors)[:5],
        }
    finally:
        server.stop()


def flood(
    work: Path, seconds: float = 15.0, threads: int = 4, postgres: PostgresServer | None = None
) -> dict[str, Any]:
    database = {"DATABASE_URL": postgres.url} if postgres else {}
    server = start(work, "flood", WHITELIST_CONNECT_RATE="off", **database)
    try:
        trips = RoundTrips(server.url, ALLOWED)
        floods = [
            Refusals(server.url, lambda n, t=t: f"https://x{t}-{n}.flood.test")
            for t in range(threads)
        ]
        with running(trips):
            time.sleep(1)
            quiet = trips.worst()
            began = time.monotonic()
            with running(*floods):
                time.sleep(seconds)
            ended = time.monotonic()
        sent = sum(each.refused for each in floods)
        windows = [
            ms(
                max(
                    (s for at, s in trips.latencies if began + w <= at < began + w + 5),
                    default=0,
                )
            )
            for w in range(0, int(ended - began), 5)
        ]
        rows, attempts = logged_once_flushed(server, sent, postgres)
        return {
            "database": "postgresql" if postgres else "sqlite",
            "flood_seconds": seconds,
            "refusals_sent": sent,
            "refusals_a_second": round(sent / (ended - began)),
            "worst_round_trip_quiet_ms": ms(quiet),
            "worst_round_trip_per_5s_ms": windows,
            "refusal_log_rows": rows,
            "refusals_logged": attempts,
            "errors": (trips.errors + [e for f in floods for e in f.errors])[:5],
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["lock", "flood", "both"], nargs="?", default="both")
    parser.add_argument("--lock-seconds", type=float, default=6.0)
    parser.add_argument("--flood-seconds", type=float, default=15.0)
    parser.add_argument("--flood-threads", type=int, default=4)
    parser.add_argument("--postgres", action="store_true", help="flood on PostgreSQL")
    options = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="guardsite-stalls-") as folder:
        work = Path(folder)
        if options.scenario in ("lock", "both"):
            results["lock"] = lock(work, options.lock_seconds)
        if options.scenario in ("flood", "both"):
            postgres = None
            if options.postgres:
                (work / "postgres").mkdir()
                postgres = PostgresServer(work / "postgres").start()
            try:
                results["flood"] = flood(
                    work, options.flood_seconds, options.flood_threads, postgres
                )
            finally:
                if postgres is not None:
                    postgres.remove()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
