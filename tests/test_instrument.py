"""python-socketio's admin UI (``instrument()``) keeps every session hardening, in every mode.

``instrument()`` registers Engine.IO connect and disconnect handlers of its
own, and in development mode swaps python-engineio's ``Socket`` methods for
``partialmethod``s: before the engine layer put its hooks back, a session's
origin, deadline and clean-up were gone, and so were eventlet's ping-timer
tracking and the WebSocket's knowledge of its own session.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio
from django.test import override_settings

from harness.live import wait_until
from tests.clients import try_connect, welcomed_websocket
from tests.inprocess import MODES, serving
from whitelist.engine import sockets
from whitelist.gate.origin_gate import OriginGate
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import allowlist
from whitelist.server.guarded import GuardedServer

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED = "https://shop.example.com"
REFUSED = "https://evil.example.net"
WAIT = 10


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest) -> GuardedServer:
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    return GuardedServer(async_mode=request.param, ping_interval=1, ping_timeout=2)


@contextlib.contextmanager
def instrumented(server: GuardedServer, mode: str) -> Iterator[str]:
    """Serve ``server`` with the admin UI in ``mode``; yields the base URL."""
    admin = server.instrument(auth=False, mode=mode, server_stats_interval=0.5)
    try:
        with serving(
            OriginGate(socketio.WSGIApp(server)), server.async_mode, before_stop=server.shutdown
        ) as url:
            yield url
    finally:
        if server.async_mode == "threading":
            admin.shutdown()
        # It patches python-engineio's Socket class itself, in every mode: a second
        # instrument() in the same process would then recurse for good.
        admin.uninstrument()


def handshake(url: str, origin: str) -> str:
    """Open an Engine.IO session over polling and connect nothing; its sid."""
    session = requests.Session()
    session.trust_env = False
    answer = session.get(
        f"{url}/socket.io/?EIO=4&transport=polling", headers={"Origin": origin}, timeout=WAIT
    )
    answer.raise_for_status()
    return str(json.loads(answer.text[1:])["sid"])


@pytest.mark.parametrize("mode", ["production", "development"])
def test_a_session_is_no_use_to_another_origin(server: GuardedServer, mode: str) -> None:
    with instrumented(server, mode) as url:
        outcome, client = try_connect(url, origin=ALLOWED, transport="polling", keep=True)
        try:
            assert outcome.welcome is not None
            endpoint = f"{url}/socket.io/?EIO=4&transport=polling&sid={client.eio.sid}"
            stolen = requests.post(
                endpoint, data='42["x"]', headers={"Origin": REFUSED}, timeout=WAIT
            )
            assert stolen.status_code == 403
        finally:
            client.disconnect()


@pytest.mark.parametrize("async_mode", MODES)
@override_settings(WHITELIST_CONNECT_TIMEOUT=1)
def test_sessions_that_connect_nothing_are_closed_on_time(async_mode: str) -> None:
    """python-engineio's own ping timeout (25 + 20 s here) would take far longer."""
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    server = GuardedServer(async_mode=async_mode)
    with instrumented(server, "production") as url:
        for origin in (REFUSED, ALLOWED, REFUSED):
            handshake(url, origin)
        assert sockets.session_count(server.eio) == 3
        assert wait_until(lambda: sockets.session_count(server.eio) == 0, WAIT)


def test_a_closed_session_leaves_nothing_behind(server: GuardedServer) -> None:
    with instrumented(server, "production") as url:
        for transport in ("polling", "websocket"):
            outcome, client = try_connect(url, origin=ALLOWED, transport=transport, keep=True)
            assert outcome.welcome is not None
            assert len(server.sessions) == 1
            client.disconnect()
            assert wait_until(lambda: len(server.sessions) == 0, WAIT)


def test_ping_timers_are_known_and_end_with_their_session() -> None:
    """eventlet: the admin UI's development mode wraps Socket._send_ping in a partialmethod."""
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    server = GuardedServer(async_mode="eventlet", ping_interval=1, ping_timeout=2)
    with instrumented(server, "development") as url:
        outcome, client = try_connect(url, origin=ALLOWED, transport="websocket", keep=True)
        try:
            assert outcome.welcome is not None
            state = server.sessions.get(client.eio.sid)
            assert state is not None
            assert wait_until(lambda: state.ping_timer is not None, WAIT)
            timer = state.ping_timer
        finally:
            client.disconnect()
        assert wait_until(lambda: timer.g.dead, WAIT)


@override_settings(WHITELIST_PRECONNECT_BYTES=1024)
def test_a_welcomed_websocket_may_send_more_than_the_preconnect_budget() -> None:
    """eventlet: the WebSocket learns its session from python-engineio's (wrapped) handler."""
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    server = GuardedServer(async_mode="eventlet", ping_interval=1, ping_timeout=2)
    server.on("echo", lambda sid, data: data)
    with instrumented(server, "development") as url:
        outcome, client = try_connect(url, origin=ALLOWED, transport="websocket", keep=True)
        try:
            assert outcome.welcome is not None
            big = "x" * 4096
            assert client.call("echo", big, timeout=WAIT) == big
        finally:
            client.disconnect()


@override_settings(WHITELIST_MAX_ATTACHMENTS=2)
def test_binary_attachment_caps_still_close_the_session(server: GuardedServer) -> None:
    with instrumented(server, "development") as url, welcomed_websocket(url, ALLOWED) as ws:
        attachments: list[Any] = [{"_placeholder": True, "num": n} for n in range(3)]
        ws.send("453-" + json.dumps(["big", *attachments]))
        assert wait_until(lambda: len(server.sessions) == 0, WAIT)


def test_an_unfinished_binary_packet_is_forgotten_with_its_session(server: GuardedServer) -> None:
    with instrumented(server, "production") as url:
        with welcomed_websocket(url, ALLOWED) as ws:
            ws.send('451-["big",{"_placeholder":true,"num":0}]')  # its attachment never comes
        assert wait_until(lambda: len(server.sessions) == 0, WAIT)
