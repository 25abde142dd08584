"""WHITELIST_REPORT_ONLY on a live server: would-be refusals are admitted, logged and recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.admin_session import refusals
from tests.clients import try_connect
from tests.live import LiveServer, wait_until

ALLOWED = "http://allowed.test"
NEW = "https://not-yet-allowed.test"
TOKEN = "metrics-token-for-the-tests"


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(
        ALLOWED,
        WHITELIST_REPORT_ONLY="1",
        WHITELIST_REFUSE_AT_HANDSHAKE="1",
        WHITELIST_METRICS_TOKEN=TOKEN,
    )


def test_a_would_be_refusal_is_admitted_and_told_nothing_different(server: LiveServer) -> None:
    allowed, _client = try_connect(server.url, origin=ALLOWED)
    reported, _client = try_connect(server.url, origin=NEW)
    assert reported.welcome_args[0] == allowed.welcome_args[0] == "Okay, you're cool."
    assert reported.hello == allowed.hello
    assert reported.error is None
    websocket, _client = try_connect(server.url, origin=NEW, transport="websocket")
    assert websocket.welcome is not None


def test_it_is_recorded_as_report_only(server: LiveServer) -> None:
    origin = "https://recorded.test"
    for _ in range(3):
        assert try_connect(server.url, origin=origin)[0].welcome is not None
    expected = [("origin-not-allowed", "/", 1, 3)]
    assert wait_until(lambda: [row[:4] for row in refusals(server, origin)] == expected)
    assert f"Would refuse {origin} on / from 127.0.0.1: no rule matches on /" in server.log()


def test_the_metrics_count_it_apart(server: LiveServer) -> None:
    try_connect(server.url, origin="https://counted.test")
    metrics = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    assert (
        'whitelist_connects_total{namespace="/",outcome="report-only",'
        'reason="origin-not-allowed"}' in metrics
    )
    assert 'outcome="refused"' not in metrics


def test_removing_a_rule_revokes_nobody(server: LiveServer) -> None:
    origin = "https://kept.test"
    assert server.manage("whitelist", "add", origin).returncode == 0
    outcome, client = try_connect(server.url, origin=origin, keep=True)
    try:
        assert outcome.welcome is not None
        assert server.manage("whitelist", "remove", origin).returncode == 0
        assert wait_until(lambda: "Would revoke https://kept.test on /" in server.log())
        assert client.connected
    finally:
        client.disconnect()
