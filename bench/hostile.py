"""Hostile traffic for ``make bench``: mixed load, floods, handshake refusals, fuzzing.

Every server runs on the server core and every load generator on the client
core, as in bench/run.py. Allowed visitors connect from many loopback addresses
(127.0.1.x), as many users would; a flood comes from one (127.0.0.2), or from
250 when the per-address limit is off.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import socketio

from bench import ratios
from bench.servers import (
    CLIENT_CORE,
    NODE,
    PYTHON,
    ROOT,
    cpu_seconds,
    pinned,
    spawn,
    stop,
    wait_for,
)
from harness.fuzz import fuzz
from harness.live import free_port
from whitelist.conf import DEFAULT_REFUSAL_RATE

LOADGEN = str(ROOT / "bench" / "loadgen.mjs")
READY = "Quit with CONTROL-C."


def loadgen(*args: str, local_address: str = "", timeout: float = 120) -> subprocess.Popen[str]:
    """Start the load generator (bench/loadgen.mjs) on the client core."""
    env = {"PATH": "/usr/bin:/bin", "LOCAL_ADDRESS": local_address}
    return subprocess.Popen(
        pinned(CLIENT_CORE, [NODE, LOADGEN, *args]),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def result_of(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    output, _ = process.communicate(timeout=timeout)
    return json.loads(output.strip().splitlines()[-1])


def start_guardsite(work: Path, env: dict[str, str], name: str, **extra: str) -> Any:
    """runsocket on the server core with ``extra`` settings; its URL and process."""
    port = free_port()
    log = work / f"{name}.log"
    process = spawn([PYTHON, "manage.py", "runsocket", f"127.0.0.1:{port}"], env | extra, log, "0")
    wait_for(log, READY, process)
    return f"http://127.0.0.1:{port}", process, log


def mixed_load(url: str, allowed: str, refused: str, total: int, concurrency: int) -> dict:
    """``total`` connects, ``concurrency`` at once, every other one refused."""
    return result_of(loadgen("mixed", url, f"{allowed},{refused}", str(concurrency), str(total)))


def connect_rate(url: str, origin: str, concurrency: int, seconds: float) -> dict:
    """Connects a second from ``origin``, each worker from its own loopback address."""
    return result_of(
        loadgen("connect", url, origin, str(concurrency), str(seconds), local_address="spread:1")
    )


def under_flood(
    url: str, process: Any, allowed: str, refused: str, seconds: float, flood_from: str
) -> dict:
    """Allowed connects a second alone, then during a flood of refused connects."""
    alone = connect_rate(url, allowed, 16, seconds)
    flood = loadgen("connect", url, refused, "64", str(seconds + 2), local_address=flood_from)
    time.sleep(1)  # the flood at full speed first
    before = cpu_seconds(process.pid)
    during = connect_rate(url, allowed, 16, seconds)
    server_cpu = (cpu_seconds(process.pid) - before) / during["seconds"]
    flooded = result_of(flood)
    return {
        "alone": alone,
        "during": during,
        "flood": flooded,
        "ratio": during["rate"] / alone["rate"],
        "server_cpu": server_cpu,
    }


def stats(url: str, origin: str) -> dict[str, int]:
    """The server's sessions, green threads, sockets and RSS (tests.late_namespaces)."""
    # websocket-client would add an Origin of its own beside ours.
    client = socketio.Client(reconnection=False, websocket_extra_options={"suppress_origin": True})
    client.connect(url, headers={"Origin": origin}, namespaces=["/late"], transports=["websocket"])
    try:
        return client.call("server_stats", namespace="/late", timeout=15)
    finally:
        client.disconnect()


def around(url: str, origin: str, measure: Callable[[], dict]) -> dict:
    """``measure()``'s result, with the server's resources before and right after it."""
    before = stats(url, origin)
    result = measure()
    return {**result, "resources": {"before": before, "after": stats(url, origin)}}


def fuzz_run(url: str, allowed: str, seconds: float, count: int) -> dict:
    """The fuzzer for a while; resources before, right after, and once settled."""
    before = stats(url, allowed)
    started = time.monotonic()
    report = fuzz(url, seed=20261129, count=count, seconds=seconds)
    elapsed = time.monotonic() - started
    right_after = stats(url, allowed)
    time.sleep(50)  # past python-engineio's 25 s ping timers and the 10 s connect timeout
    settled = stats(url, allowed)
    return {
        **report.as_dict(),
        "seconds": elapsed,
        "before": before,
        "right_after": right_after,
        "settled": settled,
    }


def run(work: Path, env: dict[str, str], allowed: str, refused: str, quick: bool) -> dict:
    """Every hostile-traffic measurement, on fresh servers."""
    seconds = 1.0 if quick else 4.0
    # The per-address limit and the pace of refusals at their defaults, unless a measurement
    # switches them off.
    defaults = ("WHITELIST_CONNECT_RATE", "WHITELIST_REFUSAL_RATE")
    env = {key: value for key, value in env.items() if key not in defaults}
    results: dict[str, Any] = {}
    logs: list[Path] = []

    def measured(name: str, **extra: str) -> tuple[str, Any]:
        # tests.live_settings: the project's settings plus the server_stats event; it turns
        # the pace of refusals off for the tests, so the default is set here.
        extra.setdefault("DJANGO_SETTINGS_MODULE", "tests.live_settings")
        extra.setdefault("WHITELIST_REFUSAL_RATE", str(DEFAULT_REFUSAL_RATE))
        url, process, log = start_guardsite(work, env, name, **extra)
        logs.append(log)
        return url, process

    print("Mixed load and a flood from one address ...", flush=True)
    url, process = measured("hostile-default")
    try:
        total = 400 if quick else 2_000
        results["mixed"] = around(
            url, allowed, lambda: mixed_load(url, allowed, refused, total, 200)
        )
        results["flood_one_address"] = around(
            url,
            allowed,
            lambda: under_flood(url, process, allowed, refused, seconds, "127.0.0.2"),
        )
    finally:
        stop(process)
    # No per-address limit can help against 250 addresses: refusals in band (the default)
    # and at the handshake, each at the default pace of refusals and without one.
    unpaced = {"WHITELIST_REFUSAL_RATE": "off"}
    at_handshake = {"WHITELIST_REFUSE_AT_HANDSHAKE": "1"}
    for key, settings in (
        ("flood_many_addresses", {}),
        ("flood_many_addresses_unpaced", unpaced),
        ("flood_many_addresses_handshake", at_handshake),
        ("flood_many_addresses_handshake_unpaced", at_handshake | unpaced),
    ):
        print(f"A flood from 250 addresses, no per-address limit ({key}) ...", flush=True)
        url, process = measured(f"hostile-{key}", WHITELIST_CONNECT_RATE="off", **settings)
        try:
            results[key] = around(
                url,
                allowed,
                lambda url=url, process=process: under_flood(
                    url, process, allowed, refused, seconds, "spread:2"
                ),
            )
        finally:
            stop(process)
    print("Refusal at the handshake ...", flush=True)
    url, process = measured(
        "hostile-handshake",
        WHITELIST_CONNECT_RATE="off",
        WHITELIST_REFUSE_AT_HANDSHAKE="1",
        WHITELIST_REFUSAL_RATE="off",  # what a refusal costs, not the pace
    )
    try:
        results["handshake"] = around(
            url,
            allowed,
            lambda: {
                "admitted": connect_rate(url, allowed, 32, seconds),
                "refused": connect_rate(url, refused, 32, seconds),
            },
        )
    finally:
        stop(process)
    print("Fuzzing ...", flush=True)
    url, process = measured(
        "hostile-fuzz", WHITELIST_CONNECT_RATE="off", WHITELIST_REFUSAL_RATE="off"
    )
    try:
        results["fuzz"] = fuzz_run(url, allowed, 10 if quick else 60, 1_000 if quick else 20_000)
    finally:
        stop(process)
    results["server_log_errors"] = sum(
        log.read_text(errors="replace").count("Traceback") for log in logs
    )
    return results


def handshake_against_node(
    work: Path, env: dict[str, str], refused: str, rules_file: Path, rounds: int, seconds: float
) -> list[dict[str, float]]:
    """Refusals a second at the handshake (HTTP 403) against Node socket.io's ``io.use()``
    refusals, in alternating rounds with fresh servers: minutes apart, the machine's
    speed moved Node's own rate by a third."""
    settings = {"WHITELIST_CONNECT_RATE": "off", "WHITELIST_REFUSE_AT_HANDSHAKE": "1"}
    results = []
    for number in range(rounds):
        print(f"Refusals at the handshake against Node's, round {number + 1}/{rounds} ...")
        rates: dict[str, float] = {}
        for kind in ("guardsite", "node") if number % 2 == 0 else ("node", "guardsite"):
            target = ratios.start(work, kind, env | settings, rules_file)
            try:
                rates[kind] = connect_rate(target.url, refused, 32, seconds)["rate"]
            finally:
                stop(target.process)
        results.append(rates)
    return results
