"""/healthz and the Prometheus metrics (whitelist.reporting.metrics), answered by the gate."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from django.test import override_settings

from harness.live import LiveServer
from tests.clients import try_connect
from whitelist.gate.origin_gate import OriginGate
from whitelist.reporting.metrics import GuardMetrics
from whitelist.rules.cache import AllowlistCache

ALLOWED = "http://allowed.test"
TOKEN = "metrics-token-for-the-tests"


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(ALLOWED, WHITELIST_METRICS_TOKEN=TOKEN)


def scrape(server: LiveServer, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.url}/metrics", headers=headers, timeout=10)


def test_health_says_the_server_can_decide(server: LiveServer) -> None:
    answer = requests.get(f"{server.url}/healthz", headers={"Host": "10.0.0.7"}, timeout=10)
    assert answer.status_code == 200  # any Host: load balancers ask by address
    assert answer.json()["status"] == "ok"
    assert answer.json()["rules"] == 1
    assert "/healthz" not in server.log()


def test_health_is_503_when_the_rules_cannot_be_loaded(
    start_server: Callable[..., LiveServer],
) -> None:
    unmigrated = start_server(migrated=False)
    answer = requests.get(f"{unmigrated.url}/healthz", timeout=10)
    assert answer.status_code == 503


@pytest.mark.parametrize("token", [None, "wrong-token-of-some-length"])
def test_metrics_need_the_token(server: LiveServer, token: str | None) -> None:
    answer = scrape(server, token)
    assert answer.status_code == 401
    assert "whitelist_" not in answer.text


def test_metrics_count_decisions_by_outcome_reason_and_namespace(server: LiveServer) -> None:
    assert try_connect(server.url, origin=ALLOWED)[0].welcome is not None
    assert try_connect(server.url, origin="http://evil.example")[0].error is not None
    assert try_connect(server.url, origin=ALLOWED, namespace="/late")[0].welcome is not None
    text = scrape(server).text
    assert 'whitelist_connects_total{namespace="/",outcome="admitted",reason="allowed"}' in text
    assert (
        'whitelist_connects_total{namespace="/",outcome="refused",reason="origin-not-allowed"}'
        in text
    )
    assert 'whitelist_connects_total{namespace="/late",outcome="admitted",reason="allowed"}' in text
    for gauge in ("whitelist_open_sockets", "whitelist_engineio_sessions", "whitelist_rules 1.0"):
        assert gauge in text
    assert "whitelist_watcher_failures_total 0.0" in text


def test_without_a_token_setting_metrics_are_not_served(
    socket_server: LiveServer,
) -> None:
    answer = requests.get(f"{socket_server.url}/metrics", timeout=10)
    assert answer.status_code == 404  # Django's: the path is nothing special


def test_a_namespace_the_server_never_registered_is_not_a_label_value() -> None:
    """With namespaces="*", a client names any namespace: it must not choose label values."""
    server = SimpleNamespace(
        handled_namespaces={"/", "/chat"}, open_sockets=[], eio=SimpleNamespace(sockets={})
    )
    metrics = GuardMetrics(server, AllowlistCache(load=lambda: None))  # type: ignore[arg-type]
    metrics.count_connect("refused", "origin-not-allowed", "/made-up-" + "x" * 50)
    metrics.count_connect("admitted", "allowed", "/chat")
    text = metrics.exposition().decode()
    assert 'namespace="(other)",outcome="refused"' in text
    assert 'namespace="/chat",outcome="admitted"' in text
    assert "made-up" not in text


@pytest.mark.parametrize(("public", "status"), [(True, "200 OK"), (False, "404 Not Found")])
def test_public_metrics_need_no_token_and_only_when_asked_for(public: bool, status: str) -> None:
    server = SimpleNamespace(
        handled_namespaces={"/"}, open_sockets=[], eio=SimpleNamespace(sockets={})
    )
    metrics = GuardMetrics(server, AllowlistCache(load=lambda: None))  # type: ignore[arg-type]

    def django(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("404 Not Found", [])
        return [b""]

    statuses: list[str] = []
    gate = OriginGate(django, metrics=metrics)
    with override_settings(WHITELIST_METRICS_PUBLIC=public, WHITELIST_METRICS_TOKEN=None):
        body = b"".join(gate({"PATH_INFO": "/metrics"}, lambda s, h: statuses.append(s)))
    assert statuses == [status]
    assert (b"whitelist_open_sockets" in body) is public
