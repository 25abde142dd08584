"""``make bench``: what the guard costs, side by side with what users would pick instead.

Servers run on core 0, the load generator on core 1. Results: a Markdown table on
stdout and in bench/results/ (git-ignored), with the raw numbers as JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cluster, hostile, modes, ratios, refusal_log, report  # noqa: E402
from bench.rules import ALLOWED_EXACT, DENIED, RULES, make_rules  # noqa: E402
from bench.scenarios import (  # noqa: E402
    Target,
    count_queries,
    hold_connections,
    probe,
    propagation,
    run_connects,
    sqlite_changed_at,
)
from bench.servers import (  # noqa: E402
    NODE,
    PYTHON,
    ROOT,
    SERVER_CORE,
    guardsite_env,
    manage,
    prepare_database,
    spawn,
    stop,
    wait_for,
)
from harness.live import free_port  # noqa: E402
from harness.services import PostgresServer, RedisServer  # noqa: E402

CONCURRENCY = 32
QUICK = os.environ.get("BENCH_QUICK") == "1"  # a smoke run of the harness itself
RUN_SECONDS = 1.0 if QUICK else 4.0
ROUNDS = 1 if QUICK else 5
RATIO_ROUNDS = 1 if QUICK else 5  # a median of 3 moved by a tenth from run to run
RATIO_SECONDS = 1.0 if QUICK else 3.0
ECHO_PAYLOADS = {"100 B": 100, "16 KiB": 16 * 1024, "512 KiB": 512 * 1024}
HOLD_COUNT = 200 if QUICK else 5_000
HOLD_SECONDS = 3.0 if QUICK else 30.0  # longer than Engine.IO's 25 s ping interval
PROPAGATION_TRIALS = 2 if QUICK else 20
EMITS = 20 if QUICK else 200
REVOKED_SOCKETS = 20 if QUICK else 200
WINDOW_SECONDS = 2.0 if QUICK else 10.0
REVOKED = "https://revoked.bench.example"
RESULTS = ROOT / "bench" / "results"


def start_servers(
    work: Path, env: dict[str, str], rules_file: Path, which: str = "abc"
) -> list[Target]:
    """Fresh a, b and c, so that no server carries another round's leftovers."""
    ports = [free_port() for _ in range(3)]
    commands = {
        "a": [PYTHON, "manage.py", "runsocket", f"127.0.0.1:{ports[0]}"],
        "b": [PYTHON, "bench/plain_server.py", str(ports[1])],
        "c": [NODE, "bench/node_server.mjs", str(ports[2]), str(rules_file)],
    }
    labels = {
        "a": "a. Guardsite runsocket",
        "b": "b. python-socketio, no check",
        "c": "c. Node socket.io 4, io.use()",
    }
    ready = {"a": "Quit with CONTROL-C.", "b": "READY", "c": "READY"}
    targets = []
    for (key, command), port in zip(commands.items(), ports, strict=True):
        if key not in which:
            continue
        log = work / f"server-{key}.log"
        process = spawn(command, env, log, SERVER_CORE)
        targets.append(Target(labels[key], f"http://127.0.0.1:{port}", process))
        wait_for(log, ready[key], process)
    return targets


def pushed_propagation(work: Path) -> dict:
    """Two nodes on one Redis, polling only every 60 s: how fast a pushed change arrives."""
    queue = RedisServer(work).start()
    try:
        env, database = prepare_database(
            work, "nodes", GUARDSITE_MESSAGE_QUEUE=queue.url, WHITELIST_REFRESH_INTERVAL="60"
        )
        rules_file = work / "no-rules.txt"
        rules_file.touch()
        nodes = []
        for name in ("node0", "node1"):  # a folder each, for their logs
            (work / name).mkdir()
            nodes += start_servers(work / name, env, rules_file, "a")
        try:
            stamp = functools.partial(sqlite_changed_at, database)
            return propagation(nodes[1], env, stamp, PROPAGATION_TRIALS)
        finally:
            stop_servers(nodes)
    finally:
        queue.stop()


def scale_out(work: Path) -> dict:
    """Two nodes on PostgreSQL (changes pushed by LISTEN/NOTIFY) and Redis, behind nginx."""
    results: dict[str, object] = {}
    for name in ("redis", "postgres"):
        (work / name).mkdir()
    with contextlib.ExitStack() as stack:
        queue = RedisServer(work / "redis").start()
        stack.callback(queue.stop)
        postgres = PostgresServer(work / "postgres").start()
        stack.callback(postgres.remove)
        env = guardsite_env(
            work,
            work / "unused.sqlite3",
            DATABASE_URL=postgres.url,
            GUARDSITE_MESSAGE_QUEUE=queue.url,
            DJANGO_SETTINGS_MODULE="tests.live_settings",  # adds the "shout" broadcast
        )
        manage(env, "migrate", "--no-input", "-v0")
        manage(env, "whitelist", "add", *make_rules(RULES))
        print("Connects through nginx ...", flush=True)
        results["connects"] = cluster.connects_through_nginx(
            work, env, ALLOWED_EXACT, CONCURRENCY, RUN_SECONDS, ROUNDS
        )
        nodes = cluster.start_nodes(work, env, 2, stack)
        stamp = functools.partial(cluster.postgres_changed_at, postgres)
        print("Cross-node propagation (PostgreSQL) ...", flush=True)
        results["propagation"] = propagation(nodes[1], env, stamp, PROPAGATION_TRIALS)
        print("Emit latency ...", flush=True)
        results["emit_same_node"] = cluster.emit_latency(
            nodes[0].url, nodes[0].url, ALLOWED_EXACT, EMITS
        )
        results["emit_cross_node"] = cluster.emit_latency(
            nodes[0].url, nodes[1].url, ALLOWED_EXACT, EMITS
        )
        print("Revocation across nodes ...", flush=True)
        manage(env, "whitelist", "add", REVOKED)
        wait_until_enforced(nodes[1].url, REVOKED)
        results["revocation"] = cluster.revocation(
            nodes[1].url, env, stamp, REVOKED, REVOKED_SOCKETS
        )
        print("Watcher queries ...", flush=True)
        proxy = cluster.start_nginx(work, nodes, stack)
        results["queries"] = cluster.watcher_queries(
            postgres, nodes, proxy, ALLOWED_EXACT, WINDOW_SECONDS
        )
    return results


def wait_until_enforced(url: str, origin: str) -> None:
    deadline = time.monotonic() + 20
    while not probe(url, origin):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{origin} not welcomed by {url}")
        time.sleep(0.05)


def stop_servers(targets: list[Target]) -> None:
    for target in targets:
        stop(target.process)


def connect_rounds(work: Path, env: dict[str, str], rules_file: Path) -> list[dict]:
    runs: list[dict] = []
    for round_number in range(ROUNDS):
        print(f"Connect rate, round {round_number + 1}/{ROUNDS} ...", flush=True)
        guardsite, plain, node = targets = start_servers(work, env, rules_file)
        plan = [
            (guardsite, ALLOWED_EXACT),
            (plain, ALLOWED_EXACT),
            (node, ALLOWED_EXACT),
            (guardsite, DENIED),
            (node, DENIED),
        ]
        try:
            for target, origin in plan:
                row = run_connects(target, origin, CONCURRENCY, RUN_SECONDS)
                allowed = origin == ALLOWED_EXACT
                runs.append(
                    {"round": round_number, "server": target.label, "allowed": allowed, **row}
                )
        finally:
            stop_servers(targets)
    return runs


def guard_ratios(work: Path, rules_file: Path) -> ratios.Rounds:
    """Guardsite against plain python-socketio with the same handlers (bench/settings.py):
    connects on both transports, limit off and on, and echoes, next to Node's echoes."""
    limit_off, _ = prepare_database(work, "ratios", DJANGO_SETTINGS_MODULE="bench.settings")
    envs = {
        "guardsite": limit_off,
        # The bench's environment turns the handshake limit off; without it, the default.
        "guardsite+limit": {k: v for k, v in limit_off.items() if k != "WHITELIST_CONNECT_RATE"},
        "plain": guardsite_env(work, work / "unused.sqlite3"),
        "plain+spread": guardsite_env(work, work / "unused.sqlite3"),
        "node": guardsite_env(work, work / "unused.sqlite3"),
    }
    return ratios.measure_rounds(work, envs, RATIO_ROUNDS, RATIO_SECONDS, ECHO_PAYLOADS, rules_file)


def main() -> None:
    started = dt.datetime.now(dt.UTC)
    results: dict[str, object] = {"started": started.isoformat(), "rules": RULES}
    print("Decision cost ...", flush=True)
    decision = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "decision.py")], capture_output=True, text=True, check=True
    )
    results["decisions"] = json.loads(decision.stdout)

    with tempfile.TemporaryDirectory(prefix="guardsite-bench-") as folder:
        work = Path(folder)
        rules_file = work / "rules.txt"
        rules_file.write_text("\n".join(make_rules(RULES)) + "\n")
        env, database = prepare_database(work, "guardsite")
        results["connects"] = connect_rounds(work, env, rules_file)
        results["ratios"] = guard_ratios(work, rules_file).as_dict()

        targets = start_servers(work, env, rules_file)
        try:
            # Before the held connections: dropping 15,000 sockets keeps servers busy.
            print("Propagation ...", flush=True)
            stamp = functools.partial(sqlite_changed_at, database)
            results["propagation"] = propagation(targets[0], env, stamp, PROPAGATION_TRIALS)
            print("Held connections ...", flush=True)
            results["held"] = hold_connections(targets, ALLOWED_EXACT, HOLD_COUNT, HOLD_SECONDS)
        finally:
            stop_servers(targets)

        results["hostile"] = hostile.run(work, env, ALLOWED_EXACT, DENIED, QUICK)
        results["hostile"]["handshake_against_node"] = hostile.handshake_against_node(
            work, env, DENIED, rules_file, RATIO_ROUNDS, RUN_SECONDS
        )

        results["refusal_log"] = refusal_log.run(
            work, rounds=2 if QUICK else 4, seconds=RUN_SECONDS
        )

        print("Async modes under gunicorn and runsocket ...", flush=True)
        results["modes"] = modes.run(work)

        print("Cross-node propagation ...", flush=True)
        results["propagation_pushed"] = pushed_propagation(work)

        results["scale_out"] = scale_out(work)

        print("Queries per connect ...", flush=True)
        query_log = work / "queries.log"
        query_log.touch()
        query_env, _ = prepare_database(
            work,
            "queries",
            DJANGO_SETTINGS_MODULE="bench.query_settings",
            GUARDSITE_QUERY_LOG=str(query_log),
        )
        (counted,) = start_servers(work, query_env, rules_file, which="a")
        try:
            results["queries"] = count_queries(counted, query_log, [ALLOWED_EXACT, DENIED], 2.0)
        finally:
            stop(counted.process)

    results["seconds"] = (dt.datetime.now(dt.UTC) - started).total_seconds()
    results["settings"] = {
        "concurrency": CONCURRENCY,
        "run_seconds": RUN_SECONDS,
        "rounds": ROUNDS,
        "ratio_rounds": RATIO_ROUNDS,
        "ratio_seconds": RATIO_SECONDS,
        "hold_count": HOLD_COUNT,
        "hold_seconds": HOLD_SECONDS,
    }
    table = report.render(results)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{stamp}.md").write_text(table)
    (RESULTS / "latest.md").write_text(table)


if __name__ == "__main__":
    main()
