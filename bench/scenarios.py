"""The measurements of ``make bench``; each returns plain data for the report."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import websocket

from bench.servers import (
    CLIENT_CORE,
    NODE,
    PYTHON,
    ROOT,
    cpu_seconds,
    pinned,
    rss_bytes,
)

LOADGEN = str(ROOT / "bench" / "loadgen.mjs")


@dataclass
class Target:
    """One running server under test."""

    label: str
    url: str
    process: subprocess.Popen[bytes]


def run_connects(
    target: Target,
    origin: str,
    concurrency: int,
    seconds: float,
    mode: str = "connect",
    **loadgen_env: str,
) -> dict:
    """One timed run of the load generator against one server, with CPU use of both.

    ``loadgen_env`` sets TRANSPORT, LOCAL_ADDRESS or PAYLOAD (bench/loadgen.mjs).
    """
    before = cpu_seconds(target.process.pid)
    started = time.monotonic()
    result = subprocess.run(
        pinned(
            CLIENT_CORE,
            [NODE, LOADGEN, mode, target.url, origin, str(concurrency), str(seconds)],
        ),
        env={"PATH": "/usr/bin:/bin", **loadgen_env},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    wall = time.monotonic() - started
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["server_cpu_seconds"] = cpu_seconds(target.process.pid) - before
    row["server_cpu"] = row["server_cpu_seconds"] / wall
    if "client_cpu_seconds" in row:
        row["client_cpu"] = row["client_cpu_seconds"] / row["seconds"]
    return row


def count_queries(target: Target, query_log: Path, origins: list[str], seconds: float) -> dict:
    """SQL statements the server ran while answering connects, split from the watcher's polls."""
    run_connects(target, origins[0], 1, 1)  # warm: the first connect loads the rules
    time.sleep(1)
    start = len(query_log.read_text().splitlines())
    answered = 0
    for origin in origins:
        row = run_connects(target, origin, 8, seconds)
        answered += row["connected"] + row["refused"]
    lines = query_log.read_text().splitlines()[start:]
    polls = sum("whitelist_allowlistrevision" in line for line in lines)
    return {
        "connects": answered,
        "queries": len(lines),
        "watcher_polls": polls,
        "per_connect": (len(lines) - polls) / answered,
    }


def hold_connections(targets: list[Target], origin: str, count: int, seconds: float) -> list[dict]:
    """Open ``count`` sockets on every server at once, hold them through a ping interval."""
    baseline = {t.label: rss_bytes(t.process.pid) for t in targets}
    clients = {
        t.label: subprocess.Popen(
            pinned(CLIENT_CORE, [NODE, LOADGEN, "hold", t.url, origin, str(count), str(seconds)]),
            stdout=subprocess.PIPE,
            text=True,
        )
        for t in targets
    }
    opened_rss = {}
    for target in targets:
        line = clients[target.label].stdout.readline()  # "OPENED n" once all are up
        if not line.startswith("OPENED"):
            raise RuntimeError(f"{target.label}: {line!r}")
    time.sleep(2)
    for target in targets:
        opened_rss[target.label] = rss_bytes(target.process.pid)
    rows = []
    for target in targets:
        out, _ = clients[target.label].communicate(timeout=seconds + 120)
        row = json.loads(out.strip().splitlines()[-1])
        row["server"] = target.label
        row["rss_before_mib"] = baseline[target.label] / 2**20
        row["rss_held_mib"] = opened_rss[target.label] / 2**20
        row["kib_per_connection"] = (
            (opened_rss[target.label] - baseline[target.label]) / 1024 / max(row["opened"], 1)
        )
        rows.append(row)
    return rows


def probe(url: str, origin: str) -> bool:
    """One real Socket.IO connect over websocket: True when welcomed, False when not.

    A connect the rules allow only since its handshake is closed for the client to
    retry (``whitelist.engine.refused_websockets``): not welcomed yet.
    """
    ws = websocket.create_connection(
        url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
        origin=origin,
        timeout=5,
    )
    try:
        ws.recv()  # Engine.IO open packet
        ws.send("40")
        while True:
            answer = ws.recv()
            if answer.startswith(("40", "44")):
                return answer.startswith("40")
            if answer == "1":  # Engine.IO's CLOSE
                return False
    except websocket.WebSocketConnectionClosedException:
        return False
    finally:
        ws.close()


def sqlite_changed_at(database: Path) -> float:
    """When the last change was stamped, as a Unix time (stamped before its commit)."""
    with sqlite3.connect(database) as db:
        (value,) = db.execute(
            "SELECT changed_at FROM whitelist_allowlistrevision WHERE id = 1"
        ).fetchone()
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp()


def propagation(
    target: Target, env: dict[str, str], stamp: Callable[[], float], trials: int
) -> dict:
    """Seconds from a CLI change (its stamp) until the running server enforces it.

    The probing runs while the CLI process still runs: the CLI's own exit
    (interpreter shutdown) would otherwise be measured too.
    """
    added, removed = [], []
    for trial in range(trials):
        origin = f"https://propagation{trial}.bench.example"
        for action, wanted, samples in (("add", True, added), ("remove", False, removed)):
            command = [PYTHON, str(ROOT / "manage.py"), "whitelist", action, origin]
            cli = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while probe(target.url, origin) is not wanted:
                if time.monotonic() > deadline:
                    cli.kill()
                    raise RuntimeError(f"{action} {origin} not enforced within 20 s")
                time.sleep(0.002)
            enforced = time.time()
            if cli.wait(60) != 0:
                raise RuntimeError(f"manage.py whitelist {action} failed")
            samples.append(enforced - stamp())
    return {
        "trials": trials,
        "add_median_ms": statistics.median(added) * 1000,
        "add_p99_ms": _p99(added) * 1000,
        "add_max_ms": max(added) * 1000,
        "remove_median_ms": statistics.median(removed) * 1000,
        "remove_p99_ms": _p99(removed) * 1000,
        "remove_max_ms": max(removed) * 1000,
    }


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]
