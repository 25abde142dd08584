"""A refused origin's WebSocket, answered without an Engine.IO session (runsocket, eventlet).

tests/test_refused_websockets_gevent.py runs the live tests here in gevent mode.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator

import pytest
import requests
import websocket
from django.test import override_settings

from harness.live import LiveServer, wait_until
from tests.clients import try_connect
from tests.test_websocket import read_until_closed
from whitelist.engine import refused_websockets
from whitelist.engine.eventlet_websocket import MESSAGE_TOO_BIG
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import allowlist
from whitelist.server.guarded import GuardedServer

ALLOWED = "http://allowed.test"
EVIL = "https://evil.test"
TOKEN = "metrics-token-for-the-tests"
REFUSAL = {
    "message": "Who invited you to this party?",
    "data": {"reason": "origin-not-allowed", "origin": EVIL},
}


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(ALLOWED, WHITELIST_METRICS_TOKEN=TOKEN)


def engineio_sessions(server: LiveServer) -> float:
    """The server's open Engine.IO sessions, as its metrics say."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    text = requests.get(f"{server.url}/metrics", headers=headers, timeout=10).text
    return float(re.search(r"^whitelist_engineio_sessions (\S+)$", text, re.M).group(1))


@contextlib.contextmanager
def refused_websocket(server: LiveServer) -> Iterator[tuple[websocket.WebSocket, dict]]:
    """A WebSocket handshake from a refused origin, and the OPEN packet it got."""
    connection = websocket.create_connection(
        f"ws://127.0.0.1:{server.ports[0]}/socket.io/?EIO=4&transport=websocket",
        origin=EVIL,
        timeout=15,
    )
    try:
        opened = connection.recv()
        assert opened.startswith("0{"), opened
        yield connection, json.loads(opened[1:])
    finally:
        connection.close()
        connection.shutdown()


def test_a_refused_origin_gets_its_refusal_and_no_session(server: LiveServer) -> None:
    with refused_websocket(server) as (connection, opened):
        assert opened["upgrades"] == []
        assert (opened["pingInterval"], opened["pingTimeout"]) == (25_000, 20_000)
        # The session id names no session: python-engineio knows nothing of it.
        assert engineio_sessions(server) == 0
        poll = requests.get(
            f"{server.url}/socket.io/",
            params={"EIO": "4", "transport": "polling", "sid": opened["sid"]},
            headers={"Origin": EVIL},
            timeout=10,
        )
        assert poll.status_code == 400
        connection.send("40")
        refusal = connection.recv()
        assert refusal.startswith("44")
        assert json.loads(refusal[2:]) == REFUSAL
        # Closed after the refusal's grace, with nothing else said but Engine.IO's CLOSE.
        code, texts = read_until_closed(connection)
        assert texts == ["1"]


def test_the_server_ends_the_connection_without_an_error(server: LiveServer) -> None:
    """gevent.pywsgi iterates what the WebSocket handler returns: None was a traceback.

    It is logged after the connection closes, so the test gives it a moment to appear.
    """
    with refused_websocket(server) as (connection, _):
        connection.send("40")
        read_until_closed(connection)
    assert not wait_until(lambda: "Traceback" in server.log(), timeout=2), server.log()


def test_every_namespace_is_answered_as_python_socketio_would(server: LiveServer) -> None:
    with refused_websocket(server) as (connection, _):
        connection.send('42["hello"]')  # an event before any connect: dropped
        connection.send("40/late,")
        assert json.loads(connection.recv().removeprefix("44/late,")) == REFUSAL
        connection.send("40/nowhere,")  # a namespace python-socketio does not serve
        assert connection.recv() == '44/nowhere,"Unable to connect"'


def test_no_connect_in_time_closes_the_connection(server: LiveServer) -> None:
    with refused_websocket(server) as (connection, _):
        code, texts = read_until_closed(connection)  # within REFUSED_CONNECT_SECONDS
        assert texts == ["1"]


@pytest.mark.parametrize(("message", "said"), [("", []), ("x", []), ("40/late,{not json", ["1"])])
def test_a_message_that_is_no_packet_closes_the_connection(
    server: LiveServer, message: str, said: list[str]
) -> None:
    """As python-engineio does: unsaid for no Engine.IO packet, its CLOSE for no Socket.IO one."""
    with refused_websocket(server) as (connection, _):
        connection.send(message)
        code, texts = read_until_closed(connection)
        assert texts == said


def test_a_large_message_is_refused_unread(server: LiveServer) -> None:
    with refused_websocket(server) as (connection, _):
        try:
            connection.send("40/late," + json.dumps({"token": "t" * 100_000}))
        except (websocket.WebSocketException, ConnectionError):
            return  # closed while the message was still being sent
        code, texts = read_until_closed(connection)
        assert texts == []
        assert code in (MESSAGE_TOO_BIG, None)  # None: reset before the close frame was read


def test_python_socketio_clients_read_the_refusal(server: LiveServer) -> None:
    outcome, _ = try_connect(server.url, origin=EVIL, transport="websocket")
    assert not outcome.connected
    assert outcome.error == REFUSAL


@pytest.mark.django_db
def test_a_connect_allowed_since_the_handshake_is_not_refused() -> None:
    """A rule added between the handshake and the connect: closed for the client to retry."""
    server = GuardedServer(async_mode="eventlet")
    environ = {"REQUEST_METHOD": "GET", "HTTP_ORIGIN": EVIL, "REMOTE_ADDR": "127.0.0.1"}
    answering = refused_websockets.RefusedWebSocket(server, environ)
    refused = answering.answer("40")
    assert refused is not None and json.loads(refused[0].removeprefix("44")) == REFUSAL
    AllowedOrigin.objects.create(pattern=EVIL)
    allowlist.invalidate()
    assert answering.answer("40") is None


@pytest.mark.django_db
def test_report_only_and_threading_keep_python_engineio_sessions() -> None:
    """Report-only admits per namespace, and threading has no green deadline: no shortcut."""
    fields = {"EIO": ["4"], "transport": ["websocket"]}
    environ = {"REQUEST_METHOD": "GET", "HTTP_UPGRADE": "websocket", "HTTP_ORIGIN": EVIL}
    assert refused_websockets.answers(GuardedServer(async_mode="eventlet").eio, environ, fields)
    assert not refused_websockets.answers(
        GuardedServer(async_mode="threading").eio, environ, fields
    )
    for other in ({"sid": ["s"]}, {"j": ["1"]}, {"EIO": ["3"]}, {"transport": ["polling"]}):
        assert not refused_websockets.answers(
            GuardedServer(async_mode="eventlet").eio, environ, fields | other
        )
    with override_settings(WHITELIST_REPORT_ONLY=True):
        started: list[str] = []
        server = GuardedServer(async_mode="eventlet")
        server.eio.handle_request = lambda *args: started.append("python-engineio")
        server.handle_request(
            dict(environ, QUERY_STRING="EIO=4&transport=websocket"), lambda *args: None
        )
        assert started == ["python-engineio"]
