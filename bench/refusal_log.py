"""The refusal log's cost on the connect path: connects a second with it on and off.

Each round starts one runsocket with ``WHITELIST_REFUSAL_LOG`` on and one with
it off (in turn, so drift hits both), and measures refused and admitted
connects a second through the same load generator as the connect benchmark.
After each "on" run the log must hold the refusals as one row whose count is
every refusal the load generator saw.

Standalone: ``.venv/bin/python bench/refusal_log.py`` (about 2 minutes).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hostile import start_guardsite  # noqa: E402
from bench.rules import ALLOWED_EXACT, DENIED, make_rules  # noqa: E402
from bench.scenarios import Target, run_connects  # noqa: E402
from bench.servers import manage, stop  # noqa: E402
from harness.live import server_env  # noqa: E402

CONCURRENCY = 32


def logged_refusals(database: Path) -> list[tuple[str, int]]:
    with closing(sqlite3.connect(database, timeout=10)) as db:
        return db.execute(
            "SELECT origin, count FROM whitelist_refusedconnect WHERE reason = 'origin-not-allowed'"
        ).fetchall()


def wait_for_count(database: Path, expected: int, timeout: float = 15) -> list[tuple[str, int]]:
    """The log once it holds ``expected`` refusals (the flush runs every second)."""
    deadline = time.monotonic() + timeout
    rows = logged_refusals(database)
    while sum(count for _, count in rows) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = logged_refusals(database)
    return rows


def one_run(work: Path, env: dict[str, str], database: Path, log_on: bool, seconds: float) -> dict:
    name = f"refusal-log-{'on' if log_on else 'off'}"
    url, process, _log = start_guardsite(
        work, env, name, WHITELIST_REFUSAL_LOG="1" if log_on else "0"
    )
    target = Target(name, url, process)
    try:
        refused = run_connects(target, DENIED, CONCURRENCY, seconds)
        admitted = run_connects(target, ALLOWED_EXACT, CONCURRENCY, seconds)
    finally:
        stop(process)
    row: dict[str, Any] = {
        "log": log_on,
        "refused_rate": refused["rate"],
        "admitted_rate": admitted["rate"],
        "refused": refused["refused"],
    }
    if log_on:
        row["rows"] = wait_for_count(database, refused["refused"])
    return row


def run(work: Path, rounds: int, seconds: float) -> dict[str, Any]:
    """``rounds`` pairs of runs; each "on" run with an empty log of its own."""
    runs = []
    for number in range(rounds):
        for log_on in (number % 2 == 0, number % 2 != 0):
            database = work / f"refusal-log-{number}-{log_on}.sqlite3"
            env = server_env(
                database,
                DJANGO_SETTINGS_MODULE="guardsite.settings",
                DJANGO_DEBUG="0",
                GUARDSITE_LOG_LEVEL="WARNING",
                GUARDSITE_STATE_DIR=str(work),
                WHITELIST_CONNECT_RATE="off",
                WHITELIST_REFUSAL_RATE="off",  # what the log costs, not the pace of refusals
            )
            manage(env, "migrate", "--no-input", "-v0")
            manage(env, "whitelist", "add", *make_rules(1_000))
            print(f"Refusal log {'on' if log_on else 'off'}, round {number + 1} ...", flush=True)
            runs.append(one_run(work, env, database, log_on, seconds))
    summary = {}
    for log_on in (True, False):
        mine = [run for run in runs if run["log"] is log_on]
        summary["on" if log_on else "off"] = {
            "refused_rate": statistics.median(run["refused_rate"] for run in mine),
            "admitted_rate": statistics.median(run["admitted_rate"] for run in mine),
        }
    return {"runs": runs, "summary": summary, "rounds": rounds, "seconds": seconds}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="guardsite-refusal-log-") as folder:
        print(json.dumps(run(Path(folder), rounds=4, seconds=4.0), indent=2))


if __name__ == "__main__":
    main()
