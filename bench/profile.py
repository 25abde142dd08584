"""Where an admitted connect's server time goes: Guardsite against plain python-socketio.

Each server runs alone on core 0 under load from core 1 (bench/loadgen.mjs, every
connect admitted) while py-spy samples it. The samples are spread over the connects
served: microseconds of server CPU a connect, by the layer a function belongs to and
by function (self time), for WebSocket and long-polling. The collapsed stacks, for
a flame graph, go to bench/results/ (git-ignored).

    python bench/profile.py [--seconds S]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ratios import start  # noqa: E402
from bench.rules import ALLOWED_EXACT  # noqa: E402
from bench.run import CONCURRENCY, RESULTS  # noqa: E402
from bench.scenarios import Target, run_connects  # noqa: E402
from bench.servers import cpu_seconds, guardsite_env, prepare_database, stop  # noqa: E402  # noqa: E402

RATE = 499  # samples a second: not a multiple of anything periodic in the server
TOP = 15
# The first match names a frame's layer (its file path).
LAYERS = [
    ("whitelist/", "Guardsite: whitelist"),
    ("guardsite/", "Guardsite: guardsite"),
    ("bench/", "bench handlers"),
    ("socketio/", "python-socketio"),
    ("engineio/", "python-engineio"),
    ("eventlet/", "eventlet"),
    ("django/", "Django"),
    ("asgiref/", "Django"),
]
NO_FRAME = "(no Python frame: greenlet switches, C code)"


def layer(frame: str) -> str:
    """py-spy names a frame ``function (path:line)``, the path short for installed code."""
    if not frame:
        return NO_FRAME
    path = "/" + frame.rsplit("(", 1)[-1]
    for marker, name in LAYERS:
        if "/" + marker in path:
            return name
    return "Python's standard library and others"


def is_guardsite(frame: str) -> bool:
    return layer(frame).startswith("Guardsite")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def sampled(target: Target, transport: str, seconds: float, out: Path) -> dict:
    """Collapsed stacks and the server's CPU time while the load runs."""
    raw = out.with_suffix(".txt")
    recorder = subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(target.process.pid),
            "--rate",
            str(RATE),
            "--duration",
            str(int(seconds) + 2),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = cpu_seconds(target.process.pid)
    result = run_connects(target, ALLOWED_EXACT, CONCURRENCY, seconds, TRANSPORT=transport)
    cpu = cpu_seconds(target.process.pid) - before
    recorder.wait(60)
    stacks: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():  # blank lines between py-spy's records
            stacks[stack] += int(count)
    return {"stacks": stacks, "cpu": cpu, "connects": result["connected"], "raw": raw}


def table(profile: dict) -> dict[str, dict[str, float]]:
    """Microseconds a connect: by layer and by function (self time), and Guardsite's own
    functions inclusive of what they call (its wrappers around the server come first)."""
    total = sum(profile["stacks"].values()) or 1
    per_sample = profile["cpu"] / total / profile["connects"] * 1e6
    layers: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    for stack, count in profile["stacks"].items():
        frames = stack.split(";")
        layers[layer(frames[-1])] += count * per_sample
        functions[frames[-1] or NO_FRAME] += count * per_sample
        for frame in {frame for frame in frames if is_guardsite(frame)}:
            ours[frame.rsplit(":", 1)[0] + ")"] += count * per_sample
    return {
        "layer (self time)": dict(layers.most_common()),
        "function (self time)": dict(functions.most_common(TOP)),
        "Guardsite function (inclusive)": dict(ours.most_common(TOP * 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    seconds = parser.parse_args().seconds
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="guardsite-profile-") as folder:
        work = Path(folder)
        guarded_env, _ = prepare_database(work, "profile", DJANGO_SETTINGS_MODULE="bench.settings")
        envs = {"guardsite": guarded_env, "plain": guardsite_env(work, work / "unused.sqlite3")}
        for transport in ("websocket", "polling"):
            print(f"\n## Admitted connects over {transport}\n")
            for kind in ("guardsite", "plain"):
                target = start(work, kind, envs[kind], None)
                try:
                    profile = sampled(target, transport, seconds, work / f"{kind}-{transport}")
                finally:
                    stop(target.process)
                flame = RESULTS / f"profile-{kind}-{transport}.txt"
                shutil.copyfile(profile["raw"], flame)
                rate = profile["connects"] / seconds
                each = profile["cpu"] / profile["connects"] * 1e6
                print(
                    f"**{kind}**: {rate:,.0f} connects a second, {each:,.0f} µs of server "
                    f"CPU each (collapsed stacks: bench/results/{flame.name})\n"
                )
                for heading, rows in table(profile).items():
                    if not rows:
                        continue
                    print(f"| {heading} | µs a connect |\n|---|---|")
                    for name, micros in rows.items():
                        print(f"| `{name}` | {micros:,.1f} |")
                    print()
                print(flush=True)


if __name__ == "__main__":
    main()
