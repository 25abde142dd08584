"""The running server follows rule changes, fails closed, answers CORS and stops cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from harness.commands import command_on
from harness.live import LiveServer, wait_until
from tests.clients import merged, try_connect
from tests.conftest import ALLOWED

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def wait_for_reason(url: str, origin: str, reason: str, bound: float = 10) -> str | None:
    """Connect repeatedly until the refusal reason (None = welcomed) is ``reason``."""
    deadline = time.monotonic() + bound
    while True:
        outcome, _ = try_connect(url, origin=origin)
        seen = outcome.refusal_reason if outcome.welcome is None else None
        if seen == reason or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def test_rule_added_by_another_process_takes_effect_live(socket_server: LiveServer) -> None:
    origin = "http://added-later.test:5001"
    assert try_connect(socket_server.url, origin=origin)[0].refusal_reason == "origin-not-allowed"
    command_on(socket_server.database, "whitelist", "add", origin)
    assert wait_for_reason(socket_server.url, origin, None) is None
    command_on(socket_server.database, "whitelist", "remove", origin)
    assert wait_for_reason(socket_server.url, origin, "origin-not-allowed") == "origin-not-allowed"


def test_database_fault_refuses_every_connect(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(migrated=False)  # no tables: loading the rules fails
    outcome, _ = try_connect(server.url, origin=ALLOWED)
    assert not outcome.connected
    assert outcome.refusal_reason == "internal-error"
    assert "origin guard failed" in server.log()


def test_runsocket_gives_credentials_only_to_allowed_origins(socket_server: LiveServer) -> None:
    """End to end; tests/test_wsgi.py holds the in-process cases of the CORS answers."""

    def handshake_from(origin: str) -> requests.Response:
        return requests.get(socket_server.url + HANDSHAKE, headers={"Origin": origin}, timeout=10)

    allowed, refused = handshake_from(ALLOWED), handshake_from("https://evil.test")
    assert (allowed.status_code, refused.status_code) == (200, 200)  # refused politely
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert refused.headers["Access-Control-Allow-Origin"] == "https://evil.test"
    assert "Access-Control-Allow-Credentials" not in refused.headers


def test_cross_origin_preflight_is_answered_from_the_allowlist(socket_server: LiveServer) -> None:
    response = requests.options(
        socket_server.url + HANDSHAKE,
        headers={"Origin": ALLOWED, "Access-Control-Request-Headers": "x-token"},
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Headers"] == "x-token"


@pytest.mark.parametrize("jsonp", ["&j=0", "&%6A=0", "&j="])
def test_jsonp_polling_is_refused(socket_server: LiveServer, jsonp: str) -> None:
    response = requests.get(
        socket_server.url + HANDSHAKE + jsonp, headers={"Referer": ALLOWED + "/"}, timeout=10
    )
    assert response.status_code == 400


def test_handshake_refusal_mode_answers_403_without_a_session(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(ALLOWED, WHITELIST_REFUSE_AT_HANDSHAKE="1")
    refused = requests.get(
        server.url + HANDSHAKE, headers={"Origin": "https://evil.test"}, timeout=10
    )
    allowed = requests.get(server.url + HANDSHAKE, headers={"Origin": ALLOWED}, timeout=10)
    assert refused.status_code == 403
    assert refused.json() == {
        "message": "Who invited you to this party?",
        "data": {"reason": "origin-not-allowed", "origin": "https://evil.test"},
    }
    assert "Access-Control-Allow-Credentials" not in refused.headers
    assert allowed.status_code == 200
    assert allowed.text.startswith('0{"sid"')


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_two_addresses_are_served_by_one_process_until_a_signal_stops_it(
    start_server: Callable[..., LiveServer], sig: signal.Signals
) -> None:
    server = start_server(ports=2)
    first, second = server.urls()
    assert requests.get(first + "/", timeout=10).status_code == 200
    assert requests.get(second + "/", timeout=10).status_code == 200
    assert server.stop(sig=sig) == 0
    assert f"Stopped ({sig.name})." in server.log()
    assert "Traceback" not in server.log()


def test_page_and_browser_client_are_served_with_debug_off(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="127.0.0.1")
    page = requests.get(server.url + "/", timeout=10)
    script = re.search(
        r'src="(/static/socket\.io-client/socket\.io\.min\.[0-9a-f.]*js)"', page.text
    )
    assert page.status_code == 200
    assert script is not None, page.text
    client = requests.get(server.url + script[1], timeout=10)
    assert client.status_code == 200
    assert "socket.io" in client.text[:200].lower()


def open_database_files(server: LiveServer) -> int:
    count = 0
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed while we looked
            count += os.readlink(fd).endswith(server.database.name)
    return count


def test_handlers_do_not_leak_database_connections(socket_server: LiveServer) -> None:
    outcome, client = try_connect(socket_server.url, origin=ALLOWED, namespace="/late", keep=True)
    try:
        for _ in range(30):  # each event runs in its own green thread
            assert client.call("count_rules", namespace="/late", timeout=10) >= 2
    finally:
        client.disconnect()
    # Without closing, each green thread keeps its own connection (30+ files).
    assert open_database_files(socket_server) <= 3


KEPT = "https://kept.test"
# One origin for each revocation below: each test removes only its own rule.
REMOVED = "https://removed.test"
FORGED = {"disconnect": "https://forged-disconnect.test", "connect": "https://forged-connect.test"}


@pytest.fixture(scope="module")
def revocable(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(KEPT, REMOVED, *FORGED.values())


def test_removing_a_rule_disconnects_its_open_sockets(revocable: LiveServer) -> None:
    revoked: list[dict[str, object]] = []
    outcome, client = try_connect(revocable.url, origin=REMOVED, keep=True)
    kept, kept_client = try_connect(revocable.url, origin=KEPT, keep=True)
    client.on("permission.revoked", lambda *args: revoked.append(merged(*args)))
    try:
        assert outcome.welcome is not None and kept.welcome is not None
        command_on(revocable.database, "whitelist", "remove", REMOVED)
        assert wait_until(lambda: not client.connected)
        expected = {
            "message": "Who invited you to this party?",
            "reason": "origin-not-allowed",
            "origin": REMOVED,
        }
        assert wait_until(lambda: revoked == [expected]), revoked
        assert kept_client.connected
    finally:
        client.disconnect()
        kept_client.disconnect()


@pytest.mark.parametrize(
    "forged",
    [
        ("disconnect", None),
        ("connect", {"HTTP_ORIGIN": KEPT, "REMOTE_USER": "admin"}),
    ],
)
def test_client_events_named_like_server_events_cannot_dodge_revocation(
    revocable: LiveServer, forged: tuple[str, object]
) -> None:
    origin = FORGED[forged[0]]
    outcome, client = try_connect(revocable.url, origin=origin, keep=True)
    try:
        assert outcome.welcome is not None
        client.emit(forged[0], forged[1])
        command_on(revocable.database, "whitelist", "remove", origin)
        assert wait_until(lambda: not client.connected)
    finally:
        client.disconnect()


def test_a_bad_host_header_is_one_log_line_without_traceback(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    response = requests.get(f"{socket_server.url}/", headers={"Host": "evil.example"}, timeout=10)
    assert response.status_code == 400
    assert wait_until(lambda: "Invalid HTTP_HOST header: 'evil.example'" in shared_log())
    assert "django/http/request.py" not in shared_log()
