"""Instructions a connect, counted by valgrind's callgrind: the same from run to run.

The connect rate moves by ±15 % as this machine's speed wanders, so a change of a
few per cent cannot be seen in it. callgrind counts the instructions the server
runs instead: the server starts uninstrumented, counting is switched on for
exactly ``--connects`` admitted connects from bench/loadgen.mjs, and the count is
divided by them. Guardsite and plain python-socketio, both transports.

    python bench/instructions.py [--connects N] [--only guardsite] [--refused | --echo BYTES]
                                 [--mode gevent] [--rounds N]

``--mode gevent`` serves Guardsite's runsocket in gevent mode: gevent's connect
against eventlet's, steadier than the connect rates of ``bench/modes.py``.

The count is not fixed: how many events each wake of the hub finds depends on
the machine's load, and the same code counted 2.39 M and 2.46 M an hour apart.
``--rounds N`` keeps both servers up and counts them in turn, N times, and
prints each round's ratio and their median: a change is judged by that ratio.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rules import ALLOWED_EXACT, DENIED  # noqa: E402
from bench.scenarios import Target, run_connects  # noqa: E402
from bench.servers import (  # noqa: E402  # noqa: E402
    SERVER_CORE,
    guardsite_env,
    prepare_database,
    server_command,
    spawn,
    stop,
    wait_for,
)
from harness.live import free_port  # noqa: E402

CONCURRENCY = 8
ECHO_SOCKETS = 10
VALGRIND = shutil.which("valgrind") or "valgrind"
CONTROL = shutil.which("callgrind_control") or "callgrind_control"


def start(work: Path, kind: str, env: dict[str, str]) -> tuple[Target, Path]:
    port = free_port()
    out = work / f"callgrind-{kind}-{port}.out"
    command, ready = server_command(kind, port)
    valgrind = [
        VALGRIND,
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        "--trace-children=no",
    ]
    log = work / f"{kind}-{port}.log"
    process = spawn([*valgrind, *command], env, log, SERVER_CORE)
    wait_for(log, ready, process, timeout=600)
    return Target(kind, f"http://127.0.0.1:{port}", process), out


def counted(
    target: Target,
    out: Path,
    transport: str,
    connects: int,
    keep: Path | None = None,
    refused: bool = False,
) -> float:
    """Instructions a connect over ``connects`` admitted (or refused) connects."""
    origin, outcome = (DENIED, "refused") if refused else (ALLOWED_EXACT, "connected")
    run_connects(target, origin, CONCURRENCY, 30, TRANSPORT=transport, COUNT="20")

    def run() -> None:
        row = run_connects(
            target, origin, CONCURRENCY, 3600, TRANSPORT=transport, COUNT=str(connects)
        )
        if row[outcome] != connects:
            raise RuntimeError(f"{target.label} {transport}: {row}")

    return instructions_during(target, out, run, keep, transport) / connects


def counted_echoes(target: Target, out: Path, size: int, echoes: int) -> float:
    """Instructions an echo (an event with its ack) of ``size`` bytes, over ``echoes``
    echoes on ``ECHO_SOCKETS`` sockets (their connects counted too: a few per cent)."""
    payload = str(size)
    run_connects(target, ALLOWED_EXACT, ECHO_SOCKETS, 30, "echo", PAYLOAD=payload, COUNT="200")

    def run() -> None:
        row = run_connects(
            target, ALLOWED_EXACT, ECHO_SOCKETS, 3600, "echo", PAYLOAD=payload, COUNT=str(echoes)
        )
        if row["acks"] != echoes or row["wrong"]:
            raise RuntimeError(f"{target.label} echo {size} B: {row}")

    return instructions_during(target, out, run, None, f"echo-{size}") / echoes


def instructions_during(
    target: Target, out: Path, run: Callable[[], None], keep: Path | None, name: str
) -> int:
    """The server's instructions while ``run()`` runs."""
    pid = str(target.process.pid)
    subprocess.run([CONTROL, "-i", "on", pid], check=True, capture_output=True)
    run()
    subprocess.run([CONTROL, "-i", "off", pid], check=True, capture_output=True)
    subprocess.run([CONTROL, "-d", pid], check=True, capture_output=True)
    dump = written_dump(out)
    total = int(re.search(r"^totals: (\d+)", dump.read_text(), re.MULTILINE)[1])
    if keep is not None:
        shutil.copyfile(dump, keep / f"callgrind-{target.label}-{name}.out")
    dump.unlink()
    return total


def written_dump(out: Path, timeout: float = 60) -> Path:
    """The dump callgrind_control asked for, once the server has written it whole
    (numbered ``out.1``, ``out.2``: each earlier one was read and removed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dump in out.parent.glob(out.name + ".*"):
            if "\ntotals: " in dump.read_text():
                return dump
        time.sleep(0.1)
    raise RuntimeError(f"callgrind wrote no dump next to {out} in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--only", choices=["guardsite", "plain"])
    parser.add_argument("--keep", type=Path, help="Keep the callgrind files in this folder.")
    parser.add_argument(
        "--echo",
        type=int,
        metavar="BYTES",
        help="Count instructions an echo of BYTES (an event and its ack), not a connect.",
    )
    parser.add_argument(
        "--refused",
        action="store_true",
        help="Count Guardsite's refusals (an origin no rule allows) instead of admissions.",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="Count the servers in turn this many times; with both, print the ratios.",
    )
    parser.add_argument(
        "--mode",
        choices=["eventlet", "gevent"],
        default="eventlet",
        help="Guardsite's async mode (GUARDSITE_SOCKETIO_ASYNC_MODE) on runsocket.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guardsite-instructions-") as folder:
        work = Path(folder)
        guarded_env, _ = prepare_database(
            work,
            "count",
            DJANGO_SETTINGS_MODULE="bench.settings",
            GUARDSITE_SOCKETIO_ASYNC_MODE=args.mode,
        )
        envs = {"guardsite": guarded_env, "plain": guardsite_env(work, work / "unused.sqlite3")}
        kinds = [args.only] if args.only else ["guardsite", "plain"]
        if args.refused:
            kinds = ["guardsite"]  # plain python-socketio refuses nobody
        outcome = "refused" if args.refused else "admitted"
        if args.echo is not None:
            print(f"| server | instructions an echo of {args.echo} B |\n|---|---|")
        else:
            print(f"| server | transport | instructions an {outcome} connect |\n|---|---|---|")
        started = {}
        try:
            for kind in kinds:
                started[kind] = start(work, kind, envs[kind])
            counts = count_in_turn(started, args)
        finally:
            for target, _ in started.values():
                stop(target.process)
        if args.echo is None and len(kinds) == 2 and args.rounds > 1:
            print_ratios(counts)


def count_in_turn(
    started: dict[str, tuple[Target, Path]], args: argparse.Namespace
) -> dict[tuple[str, str], list[float]]:
    """Each server's count a connect (or an echo), ``args.rounds`` times, in turn."""
    counts: dict[tuple[str, str], list[float]] = {}
    for number in range(1, args.rounds + 1):
        label = f" (round {number})" if args.rounds > 1 else ""
        for kind, (target, out) in started.items():
            if args.echo is not None:
                each = counted_echoes(target, out, args.echo, args.connects * 10)
                print(f"| {kind}{label} | {each:,.0f} |", flush=True)
                continue
            for transport in ("websocket", "polling"):
                each = counted(target, out, transport, args.connects, args.keep, args.refused)
                counts.setdefault((kind, transport), []).append(each)
                print(f"| {kind}{label} | {transport} | {each:,.0f} |", flush=True)
    return counts


def print_ratios(counts: dict[tuple[str, str], list[float]]) -> None:
    """plain's instructions over Guardsite's, round by round: the connect rate ratio they imply."""
    print("\n| transport | plain / Guardsite, median [range] | rounds |\n|---|---|---|")
    for transport in ("websocket", "polling"):
        ratios = [
            plain / guarded
            for plain, guarded in zip(
                counts[("plain", transport)], counts[("guardsite", transport)], strict=True
            )
        ]
        print(
            f"| {transport} | {statistics.median(ratios):.3f} "
            f"[{min(ratios):.3f}–{max(ratios):.3f}] | {len(ratios)} |"
        )


if __name__ == "__main__":
    main()
