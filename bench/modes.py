"""Guardsite in each async mode, guarded against guarded, as gunicorn serves them.

eventlet on the pinned gunicorn's eventlet worker, gevent on gunicorn 27's
gevent worker, threading on its gthread worker, each with gunicorn.conf.py:
admitted and refused connects a second (alternating rounds, eventlet first
then gevent, fresh servers each round), sockets held at once and KiB each
(eventlet and gevent: gthread holds an OS thread per socket), and how soon a
rule change made by the CLI is enforced. The goal of issue 20: gevent holds
10,000 sockets within 10 % of eventlet's memory per socket and connects within
5 % of its rate.

    .venv/bin/python bench/modes.py        # about 4 minutes; BENCH_QUICK=1 for a smoke run
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rules import ALLOWED_EXACT, DENIED  # noqa: E402
from bench.scenarios import (  # noqa: E402
    Target,
    hold_connections,
    propagation,
    run_connects,
    sqlite_changed_at,
)
from bench.servers import (  # noqa: E402
    ROOT,
    SERVER_CORE,
    guardsite_env,
    prepare_database,
    spawn,
    stop,
)
from harness.live import free_port, wait_for_gunicorn  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONCURRENCY = 32
RUN_SECONDS = 1.0 if QUICK else 4.0
ROUNDS = 1 if QUICK else 3
HOLD_COUNT = 200 if QUICK else 10_000
HOLD_SECONDS = 3.0 if QUICK else 30.0  # longer than Engine.IO's 25 s ping interval
PROPAGATION_TRIALS = 2 if QUICK else 10
CURRENT_GUNICORN = ROOT / ".venv" / "gunicorn-current"
# The worker of each mode, and the gunicorn it needs: 26 removed the eventlet worker.
WORKERS = {
    "eventlet": ("eventlet", False),
    "gevent": ("gevent", True),
    "threading": ("gthread", True),
}


def start(work: Path, mode: str, database: Path, label: str) -> tuple[Target, dict[str, str]]:
    """gunicorn -c gunicorn.conf.py in ``mode`` on ``database``, pinned to the server core."""
    worker, newest = WORKERS[mode]
    port = free_port()
    env = guardsite_env(
        work,
        database,
        GUARDSITE_WORKER=worker,
        GUARDSITE_THREADS="200",
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        # Room for the held sockets, above guardsite_env's per-address cap (one client
        # address makes every connect).
        GUARDSITE_MAX_CONNECTIONS=str(max(HOLD_COUNT, 10_000) + 2_000),
        **({"PYTHONPATH": str(CURRENT_GUNICORN)} if newest else {}),
    )
    log = work / f"gunicorn-{label}.log"
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    process = spawn(command, env, log, SERVER_CORE)
    url = f"http://127.0.0.1:{port}"
    wait_for_gunicorn(url, process, log)
    return Target(f"{mode} ({worker})", url, process), env


def worker_pid(target: Target) -> int:
    """gunicorn's one worker: its memory and CPU are the server's (the master only waits)."""
    children = Path(f"/proc/{target.process.pid}/task/{target.process.pid}/children")
    (pid,) = [int(child) for child in children.read_text().split()]
    return pid


def as_worker(target: Target) -> Target:
    """``target`` with the worker's pid, where the measures read CPU and memory."""
    worker = SimpleNamespace(pid=worker_pid(target))
    return Target(target.label, target.url, worker)  # type: ignore[arg-type]


def connect_rates(work: Path, database: Path) -> dict[str, dict[str, list[float]]]:
    """Admitted and refused connects a second per mode, fresh servers each round."""
    rates: dict[str, dict[str, list[float]]] = {}
    for round_number in range(ROUNDS):
        for mode in WORKERS:
            target, _ = start(work, mode, database, f"{mode}-{round_number}")
            try:
                measured = as_worker(target)
                for kind, origin in (("admitted", ALLOWED_EXACT), ("refused", DENIED)):
                    row = run_connects(measured, origin, CONCURRENCY, RUN_SECONDS)
                    rate = (row["connected"] + row["refused"]) / row["seconds"]
                    rates.setdefault(mode, {}).setdefault(kind, []).append(rate)
            finally:
                stop(target.process)
    return rates


def propagation_and_held(work: Path, database: Path) -> dict[str, dict]:
    """Propagation, then sockets held at once and KiB each, for the green modes.

    Propagation first: a server dropping 10,000 sockets stays busy a while.
    """
    found = {}
    for mode in ("eventlet", "gevent"):
        target, env = start(work, mode, database, f"{mode}-held")
        try:
            stamp = functools.partial(sqlite_changed_at, database)
            spread = propagation(target, env, stamp, PROPAGATION_TRIALS)
            (row,) = hold_connections([as_worker(target)], ALLOWED_EXACT, HOLD_COUNT, HOLD_SECONDS)
            row["propagation"] = spread
            found[mode] = row
        finally:
            stop(target.process)
    return found


def run(work: Path) -> dict:
    _, database = prepare_database(work, "modes")
    rates = connect_rates(work, database)
    held = propagation_and_held(work, database)
    median = {
        mode: {kind: statistics.median(values) for kind, values in kinds.items()}
        for mode, kinds in rates.items()
    }
    return {
        "rounds": ROUNDS,
        "run_seconds": RUN_SECONDS,
        "concurrency": CONCURRENCY,
        "hold_count": HOLD_COUNT,
        "rates": rates,
        "median": median,
        "held": held,
        "gevent_over_eventlet": {
            "admitted": median["gevent"]["admitted"] / median["eventlet"]["admitted"],
            "refused": median["gevent"]["refused"] / median["eventlet"]["refused"],
            "kib_per_socket": held["gevent"]["kib_per_connection"]
            / held["eventlet"]["kib_per_connection"],
        },
    }


def table(numbers: dict) -> list[str]:
    """The modes section of bench/RESULTS.md."""
    lines = [
        f"{numbers['rounds']} rounds of {numbers['run_seconds']:.0f} s, concurrency "
        f"{numbers['concurrency']}, fresh gunicorn servers each round; medians, "
        "with the rounds' range.",
        "",
        "| mode (gunicorn worker) | admitted connects/s | refused connects/s | "
        f"held of {numbers['hold_count']:,} | KiB per socket | rule change enforced, "
        "median / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for mode, kinds in numbers["rates"].items():
        cells = [
            f"{statistics.median(v):,.0f} [{min(v):,.0f}–{max(v):,.0f}]"
            for v in (kinds["admitted"], kinds["refused"])
        ]
        held = numbers["held"].get(mode)
        if held:
            spread = held["propagation"]
            cells += [
                f"{held['opened']:,}",
                f"{held['kib_per_connection']:.1f}",
                f"{spread['add_median_ms']:.0f} / {spread['add_p99_ms']:.0f} ms",
            ]
        else:
            cells += ["–", "–", "–"]
        lines.append(f"| {mode} ({WORKERS[mode][0]}) | " + " | ".join(cells) + " |")
    ratio = numbers["gevent_over_eventlet"]
    lines += [
        "",
        f"gevent over eventlet: admitted connects {ratio['admitted']:.2f}, refused "
        f"{ratio['refused']:.2f}, KiB per held socket {ratio['kib_per_socket']:.2f}.",
    ]
    return lines


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="guardsite-modes-") as folder:
        numbers = run(Path(folder))
    print("\n".join(table(numbers)))
    print(json.dumps(numbers))


if __name__ == "__main__":
    main()
