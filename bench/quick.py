"""``make bench-quick``: the connect and message ratios against plain python-socketio.

Under two minutes, for before and after any change on the connect or message path:
fresh servers each round, in alternating order, Guardsite pinned to the same core as
the plain server, the load generator on the other. The ratio is Guardsite's rate over
plain python-socketio's in the same round; the median of the rounds is printed.

    python bench/quick.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rules import ALLOWED_EXACT  # noqa: E402
from bench.run import CONCURRENCY, guardsite_env, prepare_database  # noqa: E402
from bench.scenarios import Target, run_connects  # noqa: E402
from bench.servers import SERVER_CORE, server_command, spawn, stop, wait_for  # noqa: E402
from harness.live import free_port  # noqa: E402

SECONDS = 2.0
ECHO_SOCKETS = 100
PAYLOADS = {"100 B": 100, "16 KiB": 16 * 1024}
# Each connect from the next of 250 loopback addresses: the handshake limit is on (its
# default) but never reached, as for a site's many visitors.
SPREAD = "spread:9"


def start(work: Path, kind: str, env: dict[str, str]) -> Target:
    port = free_port()
    command, ready = server_command("plain" if kind == "plain" else "guardsite", port)
    log = work / f"{kind}-{port}.log"
    process = spawn(command, env, log, SERVER_CORE)
    wait_for(log, ready, process)
    return Target(kind, f"http://127.0.0.1:{port}", process)


def measure(target: Target, limit_on: bool) -> dict[str, float]:
    """Connects a second on both transports and, limit off, acks a second per payload."""
    spread = {"LOCAL_ADDRESS": SPREAD} if limit_on else {}
    rates = {}
    for transport in ("websocket", "polling"):
        row = run_connects(
            target, ALLOWED_EXACT, CONCURRENCY, SECONDS, TRANSPORT=transport, **spread
        )
        if row["connected"] == 0 or row["error"] or row["limited"] or row["refused"]:
            raise RuntimeError(f"{target.label} {transport}: not every connect admitted: {row}")
        rates[f"connect {transport}"] = row["rate"]
        # Server CPU a connect, inverted so that higher is better here too: steadier
        # than the rate when the machine's speed wanders during a round.
        rates[f"connects per server CPU-s, {transport}"] = (
            row["connected"] / row["server_cpu_seconds"]
        )
    if not limit_on:
        for name, size in PAYLOADS.items():
            row = run_connects(
                target, ALLOWED_EXACT, ECHO_SOCKETS, SECONDS, mode="echo", PAYLOAD=str(size)
            )
            if row["wrong"]:
                raise RuntimeError(f"{target.label}: {row['wrong']} wrong echoes")
            rates[f"echo {name}"] = row["rate"]
            rates[f"echoes per server CPU-s, {name}"] = row["acks"] / row["server_cpu_seconds"]
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    ratios: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="guardsite-bench-quick-") as folder:
        work = Path(folder)
        limit_off, _ = prepare_database(work, "quick", DJANGO_SETTINGS_MODULE="bench.settings")
        # The bench's environment turns the handshake limit off; without it, the default.
        limit_on = {k: v for k, v in limit_off.items() if k != "WHITELIST_CONNECT_RATE"}
        plain_env = guardsite_env(work, work / "unused.sqlite3")
        for number in range(rounds):
            order = ["guardsite", "guardsite+limit", "plain"]
            order = order if number % 2 == 0 else order[::-1]
            measured: dict[str, dict[str, float]] = {}
            for kind in order:
                env = {"guardsite": limit_off, "guardsite+limit": limit_on, "plain": plain_env}
                target = start(work, kind, env[kind])
                try:
                    measured[kind] = measure(target, limit_on=kind == "guardsite+limit")
                finally:
                    stop(target.process)
            print(f"round {number + 1}/{rounds}: {measured}", flush=True)
            for kind in ("guardsite", "guardsite+limit"):
                for name, rate in measured[kind].items():
                    ratios.setdefault(f"{name} ({kind})", []).append(rate / measured["plain"][name])
            for kind, row in measured.items():
                for name, rate in row.items():
                    rates.setdefault(f"{name} ({kind})", []).append(rate)
    print()
    print("| measure | Guardsite / plain python-socketio, median [range] |")
    print("|---|---|")
    for name, values in ratios.items():
        print(f"| {name} | {statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}] |")
    print()
    print("| rate (a second) | median |")
    print("|---|---|")
    for name, values in sorted(rates.items()):
        print(f"| {name} | {statistics.median(values):,.0f} |")


if __name__ == "__main__":
    main()
