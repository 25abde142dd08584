"""The gate in front of a real runsocket: what reaches python-engineio, and what never does."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests
import socketio
import websocket

from harness.live import LiveServer, wait_until
from tests.clients import polling_handshake, try_connect

ALLOWED = "http://allowed.test"
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(ALLOWED)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_jsonp_with_an_upgrade_header_opens_no_session(server: LiveServer, transport: str) -> None:
    response = requests.get(
        f"{server.url}/socket.io/?EIO=4&transport={transport}&j=0",
        headers={"Origin": ALLOWED, **UPGRADE},
        timeout=10,
    )
    assert (response.status_code, response.json()) == (400, {"error": "JSONP is not supported"})


def test_a_head_over_the_cap_is_refused_before_any_session(server: LiveServer) -> None:
    """runsocket tells the gate the size of each head it read; the cap holds on it."""
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    padding = {f"X-Pad-{n}": "a" * 7000 for n in range(3)}
    padded = requests.get(url, headers={"Origin": ALLOWED, **padding}, timeout=10)
    assert padded.status_code == 431, padded.text
    usual = requests.get(url, headers={"Origin": ALLOWED, "Cookie": "s=" + "x" * 4000}, timeout=10)
    assert usual.status_code == 200, usual.text


def test_an_upgrade_of_an_open_session_naming_no_origin_is_refused(server: LiveServer) -> None:
    sid = polling_handshake(server.url, ALLOWED)
    endpoint = server.url.replace("http", "ws", 1)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"{endpoint}/socket.io/?EIO=4&transport=websocket&sid={sid}",
            suppress_origin=True,
            timeout=10,
        )
    assert refused.value.status_code == 403


def test_python_socketio_upgrades_an_admitted_session(server: LiveServer) -> None:
    """Its polls carry no Origin, its upgrade does: both still work."""
    session = requests.Session()
    client = socketio.Client(
        reconnection=False, http_session=session, websocket_extra_options={"suppress_origin": True}
    )
    welcomed = threading.Event()
    client.on("permission.message", lambda *args: welcomed.set())
    try:
        client.connect(server.url, headers={"Origin": ALLOWED}, wait_timeout=10)
        assert welcomed.wait(10)
        assert wait_until(lambda: client.transport() == "websocket")
        assert client.call("whoami", timeout=10)["transport"] == "websocket"
    finally:
        client.disconnect()
        session.close()


def test_refusal_at_handshake_welcomes_python_socketio_over_polling(
    start_server: Callable[..., LiveServer],
) -> None:
    """Its polls and POSTs carry no Origin: they were refused with 403, and it never connected."""
    strict = start_server(ALLOWED, WHITELIST_REFUSE_AT_HANDSHAKE="1")
    outcome, _client = try_connect(strict.url, origin=ALLOWED, transport="polling")
    assert outcome.welcome is not None, outcome
    refused, _client = try_connect(strict.url, origin="https://evil.test", transport="polling")
    assert not refused.connected
