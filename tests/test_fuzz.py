"""A short fuzz run against a real server: it keeps serving, and nothing piles up.

``make bench`` runs the long version (bench/hostile.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.fuzz import fuzz
from harness.live import LiveServer, wait_until
from tests.clients import try_connect, welcomed

ALLOWED = "http://allowed.test"
SETTLING = ("sessions", "deadlines", "sockets")
SETTLE_SECONDS = 120
# Inputs per run: make test runs it on eventlet and on gevent (test_fuzz_gevent.py), on
# two cores; make bench's long run (bench/hostile.py) sends many more.
COUNT = 1_000


@pytest.mark.timeout(360)
def test_fuzzed_requests_and_packets_leave_the_server_serving_and_clean(
    start_server: Callable[..., LiveServer],
) -> None:
    # No handshake limit: the fuzzer sends from one address, faster than 50 a second.
    # Not under coverage: the fuzzer keeps the server busy, and tracing it only cost time.
    server = start_server(
        ALLOWED, WHITELIST_CONNECT_RATE="off", WHITELIST_CONNECT_TIMEOUT="2", measured=False
    )
    outcome, observer = try_connect(
        server.url, origin=ALLOWED, namespace="/late", transport="websocket", keep=True
    )
    assert outcome.welcome is not None

    def stats() -> dict[str, int]:
        return observer.call("server_stats", namespace="/late", timeout=15)

    visits: list[bool] = []
    try:
        before = stats()
        report = fuzz(
            server.url,
            seed=20261129,
            count=COUNT,
            seconds=90,
            meanwhile=lambda: visits.append(welcomed(server.url, ALLOWED)),
        )
        assert report.inputs >= min(COUNT, 500), report.as_dict()
        assert report.wrong_decisions == 0, report.as_dict()
        assert report.server_errors == 0, report.as_dict()
        assert visits and all(visits), visits
        # A fuzzed session that was welcomed and then fell silent lives as long as any
        # vanished client's: python-engineio pings it after 25 s, gives up 20 s later, and
        # its service task, which visits every session once per 20 s, closes it on one
        # visit and forgets it on the next: up to 85 s after the fuzzer's last request.
        assert wait_until(
            lambda: all(stats()[key] <= before[key] for key in SETTLING), timeout=SETTLE_SECONDS
        ), (before, stats())
        # python-engineio's ping timers outlive their sessions by up to 25 s.
        assert wait_until(
            lambda: stats()["green_threads"] <= before["green_threads"] + 20, timeout=45
        ), (before, stats())
        after = stats()
        assert after["rss_kib"] - before["rss_kib"] < 64 * 1024, (before, after)
    finally:
        observer.disconnect()
    assert "Traceback" not in server.log()
