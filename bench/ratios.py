"""Guardsite's connect and echo rates over plain python-socketio's, round by round.

Shared by ``make bench-quick`` (bench/quick.py) and ``make bench`` (bench/run.py):
fresh servers each round, all up together, each measure taken on one after the
other in alternating order; every server pinned to the same core, the load
generator on the other. Connects over WebSocket and long-polling,
with the handshake limit off and on but never reached; echoes (an event and its
ack) on 100 sockets per payload size, next to Node socket.io's when asked. A
ratio is Guardsite's rate over plain python-socketio's in the same round.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.rules import ALLOWED_EXACT
from bench.scenarios import Target, run_connects
from bench.servers import NODE, SERVER_CORE, server_command, spawn, stop, wait_for
from harness.live import free_port

CONCURRENCY = 32
ECHO_SOCKETS = 100
# Each connect from the next of 250 loopback addresses: the handshake limit is on (its
# default) but never reached, as for a site's many visitors. Plain python-socketio is
# measured with the same traffic for that ratio ("plain+spread"): connecting from 250
# addresses has a cost of its own, which the ratio must not charge to the limit.
SPREAD = "spread:9"
SPREAD_KINDS = ("guardsite+limit", "plain+spread")
# Each guarded server, and the plain one it is compared with.
BASELINE = {"guardsite": "plain", "guardsite+limit": "plain+spread"}


@dataclass
class Rounds:
    """Each measure's rate per server and round, and Guardsite's ratios to plain."""

    rates: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"rates": self.rates, "ratios": self.ratios}


def start(work: Path, kind: str, env: dict[str, str], rules_file: Path | None) -> Target:
    """A fresh server: Guardsite's runsocket, the plain server, or Node socket.io."""
    port = free_port()
    if kind == "node":
        command, ready = [NODE, "bench/node_server.mjs", str(port), str(rules_file)], "READY"
    else:
        command, ready = server_command("plain" if kind.startswith("plain") else "guardsite", port)
    log = work / f"{kind}-{port}.log"
    process = spawn(command, env, log, SERVER_CORE)
    wait_for(log, ready, process)
    return Target(kind, f"http://127.0.0.1:{port}", process)


def measures(kind: str, payloads: dict[str, int]) -> list[tuple[str, str | int]]:
    """What is measured on ``kind``: connects on both transports (not Node's), and acks
    a second per payload (not from 250 addresses: the limit on, which echoes never meet,
    and its baseline)."""
    taken: list[tuple[str, str | int]] = []
    if kind != "node":
        taken += [("connects", "websocket"), ("connects", "polling")]
    if kind not in SPREAD_KINDS:
        taken += list(payloads.items())
    return taken


def measure(target: Target, kind: str, what: tuple[str, str | int], seconds: float) -> dict:
    """One measure on one server: its rate, and the same per second of server CPU."""
    name, detail = what
    if name == "connects":
        spread = {"LOCAL_ADDRESS": SPREAD} if kind in SPREAD_KINDS else {}
        row = run_connects(target, ALLOWED_EXACT, CONCURRENCY, seconds, TRANSPORT=detail, **spread)
        if row["connected"] == 0 or row["error"] or row["limited"] or row["refused"]:
            raise RuntimeError(f"{kind} {detail}: not every connect admitted: {row}")
        # Server CPU a connect, inverted so that higher is better here too: steadier
        # than the rate when the machine's speed wanders during a round.
        return {
            f"connects, {detail}": row["rate"],
            f"connects per server CPU-s, {detail}": row["connected"] / row["server_cpu_seconds"],
        }
    row = run_connects(
        target, ALLOWED_EXACT, ECHO_SOCKETS, seconds, mode="echo", PAYLOAD=str(detail)
    )
    if row["wrong"]:
        raise RuntimeError(f"{kind}: {row['wrong']} wrong echoes")
    return {
        f"echoes, {name}": row["rate"],
        f"echoes per server CPU-s, {name}": row["acks"] / row["server_cpu_seconds"],
    }


def measure_rounds(
    work: Path,
    envs: dict[str, dict[str, str]],
    rounds: int,
    seconds: float,
    payloads: dict[str, int],
    rules_file: Path | None = None,
) -> Rounds:
    """``rounds`` rounds over the servers ``envs`` names (guardsite, guardsite+limit,
    plain, and node when given).

    Each round starts every server afresh and keeps them all up; each measure is then
    taken on one server after the other, in alternating order, so that a ratio divides
    rates taken seconds apart. (Measured one server after another, Guardsite's and plain's
    WebSocket connects were some 20 s apart, and the machine's speed wandering between
    them spread one run's per-round ratios from 0.64 to 1.43.)
    """
    result = Rounds()
    for number in range(rounds):
        order = list(envs) if number % 2 == 0 else list(envs)[::-1]
        print(f"Guard ratios, round {number + 1}/{rounds} ...", flush=True)
        measured: dict[str, dict[str, float]] = {kind: {} for kind in order}
        targets: dict[str, Target] = {}
        try:
            for kind in order:
                targets[kind] = start(work, kind, envs[kind], rules_file)
            taken = {kind: measures(kind, payloads) for kind in order}
            for what in dict.fromkeys(m for kind in order for m in taken[kind]):
                for kind in order:
                    if what in taken[kind]:
                        measured[kind] |= measure(targets[kind], kind, what, seconds)
        finally:
            for target in targets.values():
                stop(target.process)
        for kind, row in measured.items():
            for name, rate in row.items():
                result.rates.setdefault(name, {}).setdefault(kind, []).append(rate)
        for kind, baseline in BASELINE.items():
            for name, rate in measured.get(kind, {}).items():
                key = f"{name} ({kind})"
                result.ratios.setdefault(key, []).append(rate / measured[baseline][name])
    return result


def table(rounds: Rounds) -> list[str]:
    """The ratios (median and range of the rounds), then the median rates."""
    lines = [
        "| measure | Guardsite / plain python-socketio, median [range] |",
        "|---|---|",
    ]
    for name, values in rounds.ratios.items():
        spread = f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"
        lines.append(f"| {name} | {spread} |")
    kinds = sorted({kind for by_kind in rounds.rates.values() for kind in by_kind})
    lines += ["", "| a second, median | " + " | ".join(kinds) + " |"]
    lines.append("|---|" + "---:|" * len(kinds))
    for name, by_kind in rounds.rates.items():
        cells = [
            f"{statistics.median(by_kind[kind]):,.0f}" if kind in by_kind else "–" for kind in kinds
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
