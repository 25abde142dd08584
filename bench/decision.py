"""Decision cost: one ``whitelist.rules.decision.decide`` call, as the connect path makes it.

Each ``Origin`` answer is kept for the rules it was decided on
(``HeaderDecisions``): in steady state a connect's decision is a kept answer.
A header not seen since the rules changed is decided anew, through the index;
both are timed.

python bench/decision.py        # prints a JSON list of rows
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guardsite.settings")

import django  # noqa: E402

django.setup()

from bench.rules import ORIGINS, make_rules  # noqa: E402
from whitelist.core.index import AllowlistIndex  # noqa: E402
from whitelist.core.origins import parse_rule  # noqa: E402
from whitelist.rules import decision  # noqa: E402
from whitelist.rules.cache import AllowlistCache, Snapshot  # noqa: E402
from whitelist.rules.decision import decide, decide_headers  # noqa: E402

CALLS = 20_000
WARMUP = 2_000


def time_decisions(cache: AllowlistCache, origin: str) -> list[int]:
    """Nanoseconds per call, each call timed on its own (timer cost included)."""
    environ = {"HTTP_ORIGIN": origin, "wsgi.url_scheme": "http"}
    clock = time.perf_counter_ns
    for _ in range(WARMUP):
        decide(environ, cache)
    samples = []
    for _ in range(CALLS):
        start = clock()
        decide(environ, cache)
        samples.append(clock() - start)
    return samples


class DecidedAnew:
    """In place of ``decision.header_decisions``: every answer decided through the index."""

    @staticmethod
    def decide(*args: object) -> decision.Decision:
        return decide_headers(*args)  # type: ignore[arg-type]


def measure() -> list[dict[str, object]]:
    rows = []
    kept_answers = decision.header_decisions
    for kept in (True, False):
        decision.header_decisions = kept_answers if kept else DecidedAnew()  # type: ignore[assignment]
        try:
            for count in (10, 1_000, 10_000):
                rows.extend(measure_rules(count, kept))
        finally:
            decision.header_decisions = kept_answers
    return rows


def measure_rules(count: int, kept: bool) -> list[dict[str, object]]:
    rows = []
    index = AllowlistIndex(parse_rule(rule) for rule in make_rules(count))
    cache = AllowlistCache(load=lambda: Snapshot(1, index), revision=lambda: 1)
    for label, origin in ORIGINS.items():
        expected = label.startswith("allowed")
        assert decide({"HTTP_ORIGIN": origin}, cache).allowed is expected, (count, label)
        samples = sorted(time_decisions(cache, origin))
        rows.append(
            {
                "rules": count,
                "kept": kept,
                "origin": label,
                "median_us": statistics.median(samples) / 1000,
                "p99_us": samples[int(0.99 * len(samples))] / 1000,
            }
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(measure()))
