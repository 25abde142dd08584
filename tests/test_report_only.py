"""WHITELIST_REPORT_ONLY on a live server: would-be refusals are admitted, logged and recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from harness.commands import command_on
from harness.live import LiveServer, wait_until
from tests.admin_session import add_superuser, logged_in, refusals
from tests.clients import try_connect
from whitelist.rules.decision import Decision, admitted_by_report_only

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


def metric(server: LiveServer, name: str, **labels: str) -> float:
    """The server's samples of ``name`` with exactly ``labels``, summed."""
    metrics = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name and sample.labels == labels
    )


def connects(server: LiveServer, outcome: str) -> float:
    """The server's count of connects to / with ``outcome`` for reason origin-not-allowed."""
    labels = {"namespace": "/", "outcome": outcome, "reason": "origin-not-allowed"}
    return metric(server, "whitelist_connects_total", **labels)


def test_the_metrics_count_it_apart(server: LiveServer) -> None:
    before = connects(server, "report-only"), connects(server, "refused")
    assert try_connect(server.url, origin="https://counted.test")[0].welcome is not None
    assert connects(server, "report-only") == before[0] + 1
    assert connects(server, "refused") == before[1]


def test_removing_a_rule_revokes_nobody(server: LiveServer) -> None:
    origin = "https://kept.test"
    rules = metric(server, "whitelist_rules")
    command_on(server.database, "whitelist", "add", origin)
    # Every origin is welcomed in report-only mode: wait until this one is by its rule.
    assert wait_until(lambda: metric(server, "whitelist_rules") == rules + 1)
    outcome, client = try_connect(server.url, origin=origin, keep=True)
    try:
        assert outcome.welcome is not None
        command_on(server.database, "whitelist", "remove", origin)
        assert wait_until(lambda: "Would revoke https://kept.test on /" in server.log())
        assert not wait_until(lambda: not client.connected, timeout=2)  # nor just after
    finally:
        client.disconnect()


def test_a_namespace_that_needs_a_login_is_never_report_only(server: LiveServer) -> None:
    """There the origin check is what stops a page elsewhere using the visitor's session."""
    outcome, _client = try_connect(server.url, origin="https://evil.test", namespace="/account")
    assert outcome.refusal_reason == "origin-not-allowed"
    assert outcome.welcome is None


def test_a_would_be_refused_origin_gets_no_cors_credentials(server: LiveServer) -> None:
    answer = requests.get(
        f"{server.url}/socket.io/?EIO=4&transport=polling",
        headers={"Origin": "https://cors.test"},
        timeout=10,
    )
    assert answer.status_code == 200  # admitted, report-only
    assert answer.headers["Access-Control-Allow-Origin"] == "https://cors.test"
    assert "Access-Control-Allow-Credentials" not in answer.headers
    allowed = requests.get(
        f"{server.url}/socket.io/?EIO=4&transport=polling",
        headers={"Origin": ALLOWED},
        timeout=10,
    )
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize(
    ("reason", "namespace", "admitted"),
    [
        ("origin-not-allowed", "/", True),
        ("null-origin", "/", True),
        ("missing-origin", None, True),
        ("malformed-origin", "/chat", True),
        ("origin-not-allowed", "/account", False),
        ("insecure-transport", "/", False),
        ("internal-error", "/", False),
        ("login-required", "/", False),
    ],
)
def test_report_only_admits_only_origin_refusals(
    reason: str, namespace: str | None, admitted: bool
) -> None:
    refusal = Decision(False, reason, "https://x.test", "origin")
    with override_settings(
        WHITELIST_REPORT_ONLY=True, WHITELIST_PROTECTED_NAMESPACES={"/account": []}
    ):
        assert admitted_by_report_only(refusal, namespace) is admitted
    with override_settings(WHITELIST_REPORT_ONLY=False):
        assert admitted_by_report_only(refusal, namespace) is False


def test_an_app_origin_is_reported_and_counted_like_any(server: LiveServer) -> None:
    origin = "capacitor://localhost"
    labels = {"outcome": "report-only", "reason": "origin-not-allowed", "namespace": "/"}
    before = metric(server, "whitelist_connects_total", **labels)
    assert try_connect(server.url, origin=origin)[0].welcome is not None
    assert wait_until(
        lambda: [row[:4] for row in refusals(server, origin)] == [("origin-not-allowed", "/", 1, 1)]
    )
    assert wait_until(lambda: metric(server, "whitelist_connects_total", **labels) == before + 1)


def test_a_socket_admitted_only_by_report_only_has_no_user(server: LiveServer) -> None:
    """Its cookies came from a page on a site the rules do not list."""
    add_superuser(server, "erin", "erins-long-password-here")
    browser = logged_in(server, "erin", "erins-long-password-here")
    cookie = {"Cookie": f"sessionid={browser.cookies['sessionid']}"}
    try:
        for origin, expected in ((ALLOWED, "erin"), ("https://unlisted.test", "")):
            outcome, client = try_connect(
                server.url, origin=origin, namespace="/late", extra_headers=cookie, keep=True
            )
            try:
                assert outcome.welcome is not None
                assert client.call("username", namespace="/late", timeout=10) == expected
            finally:
                client.disconnect()
    finally:
        browser.close()
