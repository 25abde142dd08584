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


@pytest.mark.parametrize("host", ["10.0.0.7", "attacker.example"])
def test_health_says_the_server_can_decide_and_nothing_else(server: LiveServer, host: str) -> None:
    answer = requests.get(f"{server.url}/healthz", headers={"Host": host}, timeout=10)
    assert answer.status_code == 200  # any Host: load balancers ask by address
    assert answer.json() == {"status": "ok"}  # no revision, no rule count: those are metrics
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
    request = {"PATH_INFO": "/metrics", "HTTP_HOST": "localhost"}
    with override_settings(WHITELIST_METRICS_PUBLIC=public, WHITELIST_METRICS_TOKEN=None):
        body = b"".join(gate(request, lambda s, h: statuses.append(s)))
    assert statuses == [status]
    assert (b"whitelist_open_sockets" in body) is public


@pytest.fixture(scope="module")
def public(start_server: Callable[..., LiveServer]) -> LiveServer:
    """Metrics without a token, and the token too; Django allows localhost and 127.0.0.1."""
    return start_server(ALLOWED, WHITELIST_METRICS_PUBLIC="1", WHITELIST_METRICS_TOKEN=TOKEN)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "10.0.0.7:8001", "[::1]"])
def test_public_metrics_answer_allowed_hosts_and_addresses(public: LiveServer, host: str) -> None:
    answer = requests.get(f"{public.url}/metrics", headers={"Host": host}, timeout=10)
    assert answer.status_code == 200
    assert "whitelist_rules 1.0" in answer.text


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8001", "", "a b"])
def test_public_metrics_are_not_for_a_host_django_refuses(public: LiveServer, host: str) -> None:
    """A page that rebinds attacker.example to this server reads nothing."""
    answer = requests.get(f"{public.url}/metrics", headers={"Host": host}, timeout=10)
    assert answer.status_code == 401
    assert "whitelist_" not in answer.text


def test_the_token_is_enough_whatever_the_host(public: LiveServer) -> None:
    headers = {"Host": "attacker.example", "Authorization": f"Bearer {TOKEN}"}
    answer = requests.get(f"{public.url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200
    assert "whitelist_rules 1.0" in answer.text
