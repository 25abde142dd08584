"""Start the benchmarked servers and read their CPU time and memory from /proc."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.rules import RULES, make_rules
from harness.live import server_env

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NODE = shutil.which("node") or "node"
SERVER_CORE, CLIENT_CORE = "0", "1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_command(kind: str, port: int) -> tuple[list[str], str]:
    """The command for Guardsite's runsocket or the plain server, and the line it prints
    once it serves."""
    if kind == "plain":
        return [PYTHON, "bench/plain_server.py", str(port)], "READY"
    return [PYTHON, "manage.py", "runsocket", f"127.0.0.1:{port}"], "Quit with CONTROL-C."


def pinned(core: str, command: Sequence[str]) -> list[str]:
    """Run ``command`` on one core when taskset exists (client and server apart)."""
    taskset = shutil.which("taskset")
    return (
        [taskset, "-c", core, *command]
        if taskset and os.cpu_count() and os.cpu_count() > 1
        else list(command)
    )


def _raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
    )


def spawn(
    command: Sequence[str], env: dict[str, str], log: Path, core: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            pinned(core, command),
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_open_files,
        )


def wait_for(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: no {text!r}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stderr}")
    return result.stdout


def guardsite_env(work: Path, database: Path, **extra: str) -> dict[str, str]:
    """The tests' server environment, with production-like settings and quiet logs."""
    options = {
        "DJANGO_SETTINGS_MODULE": "guardsite.settings",
        "DJANGO_DEBUG": "0",
        "GUARDSITE_LOG_LEVEL": "WARNING",
        "GUARDSITE_STATE_DIR": str(work),
        # One client address makes every connect here: measure the server, not the
        # per-address limit (bench/hostile.py measures that).
        "WHITELIST_CONNECT_RATE": "off",
        # ... and what a refusal costs, not the pace of a flood's (bench/hostile.py measures it).
        "WHITELIST_REFUSAL_RATE": "off",
        # ... and holds 5,000 sockets: the per-address connection cap (100) would close them.
        "GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS": "9000",
    }
    return server_env(database, **(options | extra))


def prepare_database(work: Path, name: str, **extra: str) -> tuple[dict[str, str], Path]:
    """A migrated SQLite file holding the benchmark's rules, and the env that uses it."""
    database = work / f"{name}.sqlite3"
    env = guardsite_env(work, database, **extra)
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "whitelist", "add", *make_rules(RULES))
    return env, database
