"""``make bench``: what the guard costs, side by side with what users would pick instead.

Servers run on core 0, the load generator on core 1. Results: a Markdown table on
stdout and in bench/results/ (git-ignored), with the raw numbers as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report  # noqa: E402
from bench.rules import ALLOWED_EXACT, DENIED, make_rules  # noqa: E402
from bench.scenarios import (  # noqa: E402
    Target,
    count_queries,
    hold_connections,
    propagation,
    run_connects,
)
from bench.servers import (  # noqa: E402
    NODE,
    PYTHON,
    ROOT,
    SERVER_CORE,
    manage,
    spawn,
    stop,
    wait_for,
)
from tests.live import free_port  # noqa: E402

RULES = 1_000
CONCURRENCY = 32
QUICK = os.environ.get("BENCH_QUICK") == "1"  # a smoke run of the harness itself
RUN_SECONDS = 1.0 if QUICK else 4.0
ROUNDS = 1 if QUICK else 5
HOLD_COUNT = 200 if QUICK else 5_000
HOLD_SECONDS = 3.0 if QUICK else 30.0  # longer than Engine.IO's 25 s ping interval
PROPAGATION_TRIALS = 2 if QUICK else 20
RESULTS = ROOT / "bench" / "results"


def guardsite_env(work: Path, database: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WHITELIST_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        DJANGO_SETTINGS_MODULE="guardsite.settings",
        DJANGO_DEBUG="0",
        GUARDSITE_LOG_LEVEL="WARNING",
        GUARDSITE_STATE_DIR=str(work),
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    env.update(extra)
    return env


def start_guardsite(work: Path, name: str, **extra: str) -> tuple[Target, dict[str, str], Path]:
    database = work / f"{name}.sqlite3"
    env = guardsite_env(work, database, **extra)
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "whitelist", "add", *make_rules(RULES))
    port = free_port()
    log = work / f"{name}.log"
    process = spawn([PYTHON, "manage.py", "runsocket", f"127.0.0.1:{port}"], env, log, SERVER_CORE)
    wait_for(log, "Quit with CONTROL-C.", process)
    return Target("a. Guardsite runsocket", f"http://127.0.0.1:{port}", process), env, database


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
        guardsite, env, database = start_guardsite(work, "guardsite")
        plain_port, node_port = free_port(), free_port()
        plain_process = spawn(
            [PYTHON, "bench/plain_server.py", str(plain_port)], env, work / "plain.log", SERVER_CORE
        )
        node_process = spawn(
            [NODE, "bench/node_server.mjs", str(node_port), str(rules_file)],
            env,
            work / "node.log",
            SERVER_CORE,
        )
        wait_for(work / "plain.log", "READY", plain_process)
        wait_for(work / "node.log", "READY", node_process)
        plain = Target(
            "b. python-socketio, no check", f"http://127.0.0.1:{plain_port}", plain_process
        )
        node = Target(
            "c. Node socket.io 4, io.use()", f"http://127.0.0.1:{node_port}", node_process
        )
        targets = [guardsite, plain, node]
        try:
            plan = [
                (guardsite, ALLOWED_EXACT),
                (plain, ALLOWED_EXACT),
                (node, ALLOWED_EXACT),
                (guardsite, DENIED),
                (node, DENIED),
            ]
            runs: list[dict] = []
            for round_number in range(ROUNDS):
                print(f"Connect rate, round {round_number + 1}/{ROUNDS} ...", flush=True)
                for target, origin in plan:
                    row = run_connects(target, origin, CONCURRENCY, RUN_SECONDS)
                    runs.append(
                        {
                            "round": round_number,
                            "server": target.label,
                            "allowed": origin == ALLOWED_EXACT,
                            **row,
                        }
                    )
            results["connects"] = runs

            # Before the held connections: dropping 15,000 sockets keeps servers busy.
            print("Propagation ...", flush=True)
            results["propagation"] = propagation(guardsite, env, database, PROPAGATION_TRIALS)

            print("Held connections ...", flush=True)
            results["held"] = hold_connections(targets, ALLOWED_EXACT, HOLD_COUNT, HOLD_SECONDS)
        finally:
            for target in targets:
                stop(target.process)

        print("Queries per connect ...", flush=True)
        query_log = work / "queries.log"
        query_log.touch()
        counted, _, _ = start_guardsite(
            work,
            "queries",
            DJANGO_SETTINGS_MODULE="bench.query_settings",
            GUARDSITE_QUERY_LOG=str(query_log),
        )
        try:
            results["queries"] = count_queries(counted, query_log, [ALLOWED_EXACT, DENIED], 2.0)
        finally:
            stop(counted.process)

    results["seconds"] = (dt.datetime.now(dt.UTC) - started).total_seconds()
    results["settings"] = {
        "concurrency": CONCURRENCY,
        "run_seconds": RUN_SECONDS,
        "rounds": ROUNDS,
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
