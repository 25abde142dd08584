"""The real runsocket, real python-socketio clients, over both transports."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from harness.commands import command_on
from harness.live import LiveServer, wait_until
from tests.clients import try_connect
from tests.conftest import ALLOWED

REFUSAL = "Who invited you to this party?"
WELCOME = "Okay, you're cool."
TRANSPORTS = ["polling", "websocket"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_allowed_origin_is_welcomed(socket_server: LiveServer, transport: str) -> None:
    outcome, _ = try_connect(socket_server.url, origin=ALLOWED, transport=transport)
    assert outcome.connected
    # The recipe's plain message first (a page may write it straight in), then the details.
    assert outcome.welcome_args == (
        WELCOME,
        {"origin": ALLOWED, "rule": ALLOWED, "transport": transport},
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused_origin_gets_polite_connect_error(
    socket_server: LiveServer, transport: str
) -> None:
    outcome, _ = try_connect(socket_server.url, origin="https://evil.test", transport=transport)
    assert not outcome.connected
    assert outcome.error == {
        "message": REFUSAL,
        "data": {"reason": "origin-not-allowed", "origin": "https://evil.test"},
    }
    assert outcome.welcome is None
    assert outcome.events == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subdomain_rule_admits_nested_subdomain(socket_server: LiveServer, transport: str) -> None:
    outcome, _ = try_connect(
        socket_server.url, origin="https://a.b.example.com", transport=transport
    )
    assert outcome.welcome is not None
    assert outcome.welcome["rule"] == "https://*.example.com"


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.com",
        "https://example.com.evil.com",
        "https://evilexample.com",
        "http://a.example.com",
        "http://allowed.test",
    ],
)
def test_look_alike_origins_are_refused(socket_server: LiveServer, origin: str) -> None:
    outcome, _ = try_connect(socket_server.url, origin=origin)
    assert outcome.refusal_reason == "origin-not-allowed"


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("null", "null-origin"),
        ("https://example.com@evil.com", "malformed-origin"),
        ("http://allowed.test:8080/", "malformed-origin"),
        ("http://allowed.test:80800", "malformed-origin"),
    ],
)
def test_malformed_origins_are_refused(socket_server: LiveServer, origin: str, reason: str) -> None:
    outcome, _ = try_connect(socket_server.url, origin=origin)
    assert outcome.refusal_reason == reason


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_missing_headers_are_refused(socket_server: LiveServer, transport: str) -> None:
    outcome, _ = try_connect(socket_server.url, transport=transport)
    assert outcome.refusal_reason == "missing-origin"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_referer_is_used_when_origin_is_absent(socket_server: LiveServer, transport: str) -> None:
    outcome, _ = try_connect(
        socket_server.url, referer=f"{ALLOWED}/chat/room?x=1", transport=transport
    )
    assert outcome.welcome is not None
    assert outcome.welcome["origin"] == ALLOWED


def test_bad_origin_does_not_fall_back_to_a_good_referer(socket_server: LiveServer) -> None:
    outcome, _ = try_connect(socket_server.url, origin="null", referer=f"{ALLOWED}/")
    assert outcome.refusal_reason == "null-origin"


def test_websocket_clients_own_origin_joined_by_comma_is_refused(socket_server: LiveServer) -> None:
    outcome, _ = try_connect(
        socket_server.url, origin=ALLOWED, transport="websocket", suppress_origin=False
    )
    assert outcome.refusal_reason == "malformed-origin"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_namespace_added_without_the_guard_is_guarded(
    socket_server: LiveServer, transport: str
) -> None:
    refused, _ = try_connect(
        socket_server.url, origin="https://evil.test", namespace="/late", transport=transport
    )
    allowed, _ = try_connect(socket_server.url, origin=ALLOWED, namespace="/late")
    assert refused.refusal_reason == "origin-not-allowed"
    assert allowed.welcome is not None


def test_failing_connect_handler_refuses_instead_of_admitting(socket_server: LiveServer) -> None:
    outcome, _ = try_connect(socket_server.url, origin=ALLOWED, namespace="/broken")
    assert not outcome.connected
    assert outcome.refusal_reason == "internal-error"


def test_allowed_client_can_use_a_namespace(socket_server: LiveServer) -> None:
    outcome, client = try_connect(socket_server.url, origin=ALLOWED, namespace="/late", keep=True)
    try:
        assert client.call("echo", {"n": 1}, namespace="/late", timeout=10) == {"n": 1}
    finally:
        client.disconnect()


def test_project_handlers_see_what_the_guard_decided(socket_server: LiveServer) -> None:
    _, client = try_connect(socket_server.url, origin=ALLOWED, keep=True)
    try:
        sid = client.get_sid()
        answer = client.call("whoami", timeout=10)
    finally:
        client.disconnect()
    assert answer == {"sid": sid, "origin": ALLOWED, "transport": "polling"}


@pytest.mark.parametrize(("namespace", "reason"), [("/typeerror", "internal-error")])
def test_type_error_in_a_connect_handler_is_a_refusal(
    socket_server: LiveServer, namespace: str, reason: str
) -> None:
    outcome, _ = try_connect(socket_server.url, origin=ALLOWED, namespace=namespace)
    assert outcome.refusal_reason == reason


def test_legacy_two_argument_connect_handler_is_welcomed(socket_server: LiveServer) -> None:
    outcome, _ = try_connect(socket_server.url, origin=ALLOWED, namespace="/legacy")
    assert outcome.welcome is not None


def test_refused_connects_leave_no_open_socket_behind(socket_server: LiveServer) -> None:
    _, client = try_connect(socket_server.url, origin=ALLOWED, namespace="/late", keep=True)
    try:
        before = client.call("open_sockets", namespace="/late", timeout=10)
        for namespace in ("/broken", "/refusing", "/typeerror"):
            outcome, _ = try_connect(socket_server.url, origin=ALLOWED, namespace=namespace)
            assert not outcome.connected
        after = client.call("open_sockets", namespace="/late", timeout=10)
    finally:
        client.disconnect()
    assert after == before


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_rule_removed_by_another_process_during_a_slow_connect_is_enforced(
    start_server: Callable[..., LiveServer], transport: str
) -> None:
    """Removed while its connect handler did I/O, the socket was served for 17 s."""
    origin, observer_origin = "http://slow.example", "http://observer.example"
    server = start_server(origin, observer_origin)
    seen, observer = try_connect(server.url, origin=observer_origin, namespace="/late", keep=True)
    assert seen.welcome is not None
    attempts: list[Any] = []

    def connect() -> None:
        attempts.append(
            try_connect(
                server.url,
                origin=origin,
                namespace="/slow",
                transport=transport,
                keep=True,
                timeout=5,
            )
        )

    connecting = threading.Thread(target=connect)
    try:
        connecting.start()
        # Inside the 1.5 s connect handler.
        assert wait_until(lambda: observer.call("slow_connects", namespace="/late") == 1)
        command_on(server.database, "whitelist", "remove", origin)
        connecting.join(30)
        # Judged against the rules it started with, then checked again: not kept.
        assert wait_until(lambda: observer.call("open_sockets", namespace="/late") == 1, timeout=15)
        assert not try_connect(server.url, origin=origin)[0].welcome
    finally:
        observer.disconnect()
        for _, client in attempts:
            client.disconnect()
