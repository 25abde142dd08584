"""Load from many addresses, half of it refused: every decision right, no server error.

The short version of bench/hostile.py's mixed load (``make bench`` runs 2,000).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from harness.live import ROOT, LiveServer

ALLOWED = "http://allowed.test"
REFUSED = "http://evil.example"


def test_mixed_load_from_many_addresses_gets_every_decision_right(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(ALLOWED, measured=False)  # under load: tracing only cost time
    result = subprocess.run(
        ["node", "bench/loadgen.mjs", "mixed", server.url, f"{ALLOWED},{REFUSED}", "100", "600"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["wrong"] == 0, counts
    assert (counts["connected"], counts["refused"]) == (300, 300), counts
    assert (counts["error"], counts["limited"], counts["server_errors"]) == (0, 0, []), counts
    assert "Traceback" not in server.log()
