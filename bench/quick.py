"""``make bench-quick``: the connect and message ratios against plain python-socketio.

Under two minutes, for before and after any change on the connect or message path
(bench/ratios.py, with short runs and two payload sizes). The machine's speed
wanders by ±15 % within a round here: a change of a few per cent needs
``make bench-instructions``.

    python bench/quick.py [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ratios import measure_rounds, table  # noqa: E402
from bench.servers import guardsite_env, prepare_database  # noqa: E402

SECONDS = 2.0
PAYLOADS = {"100 B": 100, "16 KiB": 16 * 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="guardsite-bench-quick-") as folder:
        work = Path(folder)
        limit_off, _ = prepare_database(work, "quick", DJANGO_SETTINGS_MODULE="bench.settings")
        # The bench's environment turns the handshake limit off; without it, the default.
        limit_on = {k: v for k, v in limit_off.items() if k != "WHITELIST_CONNECT_RATE"}
        envs = {
            "guardsite": limit_off,
            "guardsite+limit": limit_on,
            "plain": guardsite_env(work, work / "unused.sqlite3"),
            "plain+spread": guardsite_env(work, work / "unused.sqlite3"),
        }
        result = measure_rounds(work, envs, rounds, SECONDS, PAYLOADS)
    print()
    print("\n".join(table(result)))


if __name__ == "__main__":
    main()
