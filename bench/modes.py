"""Guardsite in each async mode, guarded against guarded, as gunicorn and runsocket serve them.

eventlet on the pinned gunicorn's eventlet worker, gevent on gunicorn 27's
gevent worker, threading on its gthread worker, each with gunicorn.conf.py,
and runsocket in eventlet and in gevent mode: admitted and refused connects a
second (alternating rounds in that order, fresh servers each round), sockets
held at once and KiB each (the green servers: gthread holds an OS thread per
socket), and how soon a rule change made by the CLI is enforced. The goal of
issue 20: gevent holds 10,000 sockets within 10 % of eventlet's memory per
socket and connects within 5 % of its rate.

    .venv/bin/python bench/modes.py        # about 8 minutes; BENCH_QUICK=1 for a smoke run
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
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
    wait_for,
)
from harness.live import free_port, wait_for_gunicorn  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
CONCURRENCY = 32
RUN_SECONDS = 1.0 if QUICK else 4.0
ROUNDS = 1 if QUICK else 5  # the machine moves connect rates by 30 % between runs
HOLD_COUNT = 200 if QUICK else 10_000
HOLD_SECONDS = 3.0 if QUICK else 30.0  # longer than Engine.IO's 25 s ping interval
PROPAGATION_TRIALS = 2 if QUICK else 10
CURRENT_GUNICORN = ROOT / ".venv" / "gunicorn-current"


@dataclass(frozen=True)
class Server:
    """How one mode is served: a gunicorn worker (and whether it needs gunicorn 27), or
    runsocket."""

    mode: str
    worker: str | None = None  # None: runsocket
    newest_gunicorn: bool = False

    @property
    def label(self) -> str:
        return f"{self.mode} ({self.worker or 'runsocket'})"


SERVERS = [
    Server("eventlet", "eventlet"),
    Server("gevent", "gevent", newest_gunicorn=True),
    Server("threading", "gthread", newest_gunicorn=True),
    Server("eventlet"),
    Server("gevent"),
]
GREEN = [server for server in SERVERS if server.mode != "threading"]


def start(work: Path, server: Server, database: Path, label: str) -> tuple[Target, dict[str, str]]:
    """``server`` on ``database``, pinned to the server core."""
    port = free_port()
    env = guardsite_env(
        work,
        database,
        GUARDSITE_SOCKETIO_ASYNC_MODE=server.mode,
        # Room for the held sockets, in the pool and, for runsocket, under the per-address
        # cap (one client address makes every connect; gunicorn has no such cap).
        GUARDSITE_MAX_CONNECTIONS=str(max(HOLD_COUNT, 10_000) + 2_000),
        GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS=str(max(HOLD_COUNT, 10_000) + 1_000),
    )
    url = f"http://127.0.0.1:{port}"
    log = work / f"server-{label}.log"
    if server.worker is None:
        command = [sys.executable, "manage.py", "runsocket", f"127.0.0.1:{port}"]
        process = spawn(command, env, log, SERVER_CORE)
        wait_for(log, "Quit with CONTROL-C.", process)
        return Target(server.label, url, process), env
    env |= {
        "GUARDSITE_WORKER": server.worker,
        "GUARDSITE_THREADS": "200",
        "GUARDSITE_BIND": f"127.0.0.1:{port}",
        **({"PYTHONPATH": str(CURRENT_GUNICORN)} if server.newest_gunicorn else {}),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    process = spawn(command, env, log, SERVER_CORE)
    wait_for_gunicorn(url, process, log)
    return Target(server.label, url, process), env


def as_served(target: Target, server: Server) -> Target:
    """``target`` with the pid of the process that serves, where the measures read CPU and
    memory: gunicorn's one worker (the master only waits), or runsocket itself (taskset
    execs it)."""
    pid = target.process.pid
    if server.worker is not None:
        (pid,) = [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    return Target(target.label, target.url, SimpleNamespace(pid=pid))  # type: ignore[arg-type]


def connect_rates(work: Path, database: Path) -> dict[str, dict[str, list[float]]]:
    """Admitted and refused connects a second per server, fresh servers each round."""
    rates: dict[str, dict[str, list[float]]] = {}
    for round_number in range(ROUNDS):
        for server in SERVERS:
            name = f"{server.mode}-{server.worker or 'runsocket'}-{round_number}"
            target, _ = start(work, server, database, name)
            try:
                measured = as_served(target, server)
                for kind, origin in (("admitted", ALLOWED_EXACT), ("refused", DENIED)):
                    row = run_connects(measured, origin, CONCURRENCY, RUN_SECONDS)
                    rate = (row["connected"] + row["refused"]) / row["seconds"]
                    rates.setdefault(server.label, {}).setdefault(kind, []).append(rate)
            finally:
                stop(target.process)
    return rates


def propagation_and_held(work: Path, database: Path) -> dict[str, dict]:
    """Propagation, then sockets held at once and KiB each, for the green servers.

    Propagation first: a server dropping 10,000 sockets stays busy a while.
    """
    found = {}
    for server in GREEN:
        name = f"{server.mode}-{server.worker or 'runsocket'}-held"
        target, env = start(work, server, database, name)
        try:
            stamp = functools.partial(sqlite_changed_at, database)
            spread = propagation(target, env, stamp, PROPAGATION_TRIALS)
            served = as_served(target, server)
            (row,) = hold_connections([served], ALLOWED_EXACT, HOLD_COUNT, HOLD_SECONDS)
            row["propagation"] = spread
            found[server.label] = row
        finally:
            stop(target.process)
    return found


def gevent_over_eventlet(
    median: dict[str, dict[str, float]], held: dict[str, dict], how: str | None
) -> dict[str, float]:
    """gevent's figures over eventlet's, both served the same way (``how``: a gunicorn
    worker's name, or None for runsocket)."""
    gevent = Server("gevent", how).label
    eventlet = Server("eventlet", "eventlet" if how else None).label
    return {
        "admitted": median[gevent]["admitted"] / median[eventlet]["admitted"],
        "refused": median[gevent]["refused"] / median[eventlet]["refused"],
        "kib_per_socket": held[gevent]["kib_per_connection"] / held[eventlet]["kib_per_connection"],
    }


def run(work: Path) -> dict:
    _, database = prepare_database(work, "modes")
    rates = connect_rates(work, database)
    held = propagation_and_held(work, database)
    median = {
        label: {kind: statistics.median(values) for kind, values in kinds.items()}
        for label, kinds in rates.items()
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
            "gunicorn": gevent_over_eventlet(median, held, "gevent"),
            "runsocket": gevent_over_eventlet(median, held, None),
        },
    }


def table(numbers: dict) -> list[str]:
    """The modes section of bench/RESULTS.md."""
    lines = [
        f"{numbers['rounds']} rounds of {numbers['run_seconds']:.0f} s, concurrency "
        f"{numbers['concurrency']}, fresh servers each round; medians, with the rounds' "
        "range.",
        "",
        "| mode (served by) | admitted connects/s | refused connects/s | "
        f"held of {numbers['hold_count']:,} | KiB per socket | rule change enforced, "
        "median / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for label, kinds in numbers["rates"].items():
        cells = [
            f"{statistics.median(v):,.0f} [{min(v):,.0f}–{max(v):,.0f}]"
            for v in (kinds["admitted"], kinds["refused"])
        ]
        held = numbers["held"].get(label)
        if held:
            spread = held["propagation"]
            cells += [
                f"{held['opened']:,}",
                f"{held['kib_per_connection']:.1f}",
                f"{spread['add_median_ms']:.0f} / {spread['add_p99_ms']:.0f} ms",
            ]
        else:
            cells += ["–", "–", "–"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for how, ratio in numbers["gevent_over_eventlet"].items():
        lines.append(
            f"gevent over eventlet on {how}: admitted connects {ratio['admitted']:.2f}, "
            f"refused {ratio['refused']:.2f}, KiB per held socket "
            f"{ratio['kib_per_socket']:.2f}."
        )
    return lines


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="guardsite-modes-") as folder:
        numbers = run(Path(folder))
    print("\n".join(table(numbers)))
    print(json.dumps(numbers))


if __name__ == "__main__":
    main()
