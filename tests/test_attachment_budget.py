"""The server-wide budget for binary attachments (whitelist.engine.messages.PendingAttachments).

Each session may hold ``WHITELIST_MAX_BINARY_BYTES`` of attachments for an
unfinished packet; without a sum, twenty sessions just under it grew the
server by 185 MiB. Real ``GuardedServer`` in all three async modes, raw WebSockets.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import pytest
import socketio
import websocket
from django.test import override_settings

from harness.live import wait_until
from tests.inprocess import MODES, serving
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine import messages
from whitelist.engine.sessions import EngineSession
from whitelist.gate.origin_gate import OriginGate
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import allowlist
from whitelist.server.guarded import GuardedServer

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED = "https://shop.example.com"
ATTACHMENT = b"\x01" * 999_000
# A binary event announcing five attachments; each session sends fewer (under its own cap).
FIVE = "455-" + json.dumps(["upload", *({"_placeholder": True, "num": n} for n in range(5))])
TWO = "452-" + json.dumps(["upload", *({"_placeholder": True, "num": n} for n in range(2))])
OVER = "the server holds 3000000 bytes of attachments already"


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest) -> GuardedServer:
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    server = GuardedServer(async_mode=request.param, ping_interval=1, ping_timeout=2)
    server.on("upload", lambda sid, *files: None)
    return server


@pytest.fixture
def url(server: GuardedServer) -> Iterator[str]:
    with serving(OriginGate(socketio.WSGIApp(server)), server.async_mode, server.shutdown) as url:
        yield url


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> str:
    """Every refusal logged, not only the first few."""
    monkeypatch.setattr(messages, "malformed_log", RateLimitedLog(messages.logger))
    caplog.set_level(logging.WARNING, logger="whitelist")
    return ""


@contextlib.contextmanager
def welcomed(url: str) -> Iterator[tuple[websocket.WebSocket, str]]:
    """A raw Engine.IO WebSocket whose socket on "/" was admitted, and its Engine.IO sid."""
    endpoint = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(endpoint, origin=ALLOWED, timeout=10)
    try:
        opening = ws.recv()
        ws.send("40")
        assert acknowledged(ws)
        yield ws, json.loads(opening[1:])["sid"]
    finally:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            ws.close()
        ws.shutdown()


def acknowledged(ws: websocket.WebSocket, pings: int = 10) -> bool:
    """Read up to the connect's acknowledgement, answering the pings before it.

    The server pings every second here: on a busy machine one came before the
    acknowledgement, and the test read it as the answer.
    """
    for _ in range(pings + 1):
        message = ws.recv()
        if message != "2":
            return message.startswith("40")
        ws.send("3")
    return False


def held(server: GuardedServer, sid: str) -> int | None:
    """The attachments ``sid`` holds for its unfinished packet (None: its session is closed)."""
    state = server.sessions.get(sid)
    return None if state is None else state.pending_binary_bytes


@override_settings(
    WHITELIST_MAX_BINARY_BYTES=2_000_000, WHITELIST_MAX_PENDING_BINARY_BYTES=3_000_000
)
def test_sessions_each_under_their_cap_are_refused_beyond_the_servers_budget(
    server: GuardedServer, url: str, refusals: str, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.ExitStack() as stack:
        sessions = [stack.enter_context(welcomed(url)) for _ in range(4)]
        for ws, sid in sessions[:3]:  # 2,997,000 bytes in all: within the budget
            ws.send(FIVE)
            ws.send_binary(ATTACHMENT)
            assert wait_until(lambda sid=sid: held(server, sid) == len(ATTACHMENT))
        last, last_sid = sessions[3]
        last.send(FIVE)
        with contextlib.suppress(OSError, websocket.WebSocketException):
            last.send_binary(ATTACHMENT)
        assert wait_until(lambda: held(server, last_sid) is None), caplog.text
        assert OVER in caplog.text
        assert [held(server, sid) for _ws, sid in sessions[:3]] == [len(ATTACHMENT)] * 3


@override_settings(
    WHITELIST_MAX_BINARY_BYTES=2_000_000, WHITELIST_MAX_PENDING_BINARY_BYTES=2_500_000
)
def test_a_closed_session_leaves_its_share_of_the_budget(
    server: GuardedServer, url: str, refusals: str, caplog: pytest.LogCaptureFixture
) -> None:
    with welcomed(url) as (first, first_sid), welcomed(url) as (second, second_sid):
        for ws, sid in ((first, first_sid), (second, second_sid)):
            ws.send(FIVE)
            ws.send_binary(ATTACHMENT)
            assert wait_until(lambda sid=sid: held(server, sid) == len(ATTACHMENT))
        first.close()
        assert wait_until(lambda: held(server, first_sid) is None)
        with welcomed(url) as (third, third_sid):  # 1,998,000 held by the open sessions
            third.send(FIVE)
            third.send_binary(ATTACHMENT)
            assert wait_until(lambda: held(server, third_sid) == len(ATTACHMENT)), caplog.text
    assert "bytes of attachments already" not in caplog.text


@override_settings(
    WHITELIST_MAX_BINARY_BYTES=2_000_000, WHITELIST_MAX_PENDING_BINARY_BYTES=3_000_000
)
def test_a_complete_packet_leaves_its_share_of_the_budget(
    server: GuardedServer, url: str, refusals: str, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[int] = []
    server.on("upload", lambda sid, *files: received.append(sum(map(len, files))))
    with welcomed(url) as (ws, sid):
        for round_ in range(1, 5):  # 7,992,000 bytes in four packets, 1,998,000 at a time
            ws.send(TWO)
            ws.send_binary(ATTACHMENT)
            ws.send_binary(ATTACHMENT)
            assert wait_until(lambda round_=round_: len(received) == round_), caplog.text
        # The handler may run in a thread of its own before the share is released.
        assert wait_until(lambda: held(server, sid) == 0)
    assert received == [2 * len(ATTACHMENT)] * 4
    assert OVER not in caplog.text


class Assembling:
    """A stand-in server: the sessions python-socketio holds an unfinished packet for."""

    def __init__(self) -> None:
        self._binary_packet: dict[str, object] = {}
        self.sessions: dict[str, EngineSession] = {}


@override_settings(WHITELIST_MAX_PENDING_BINARY_BYTES=50)
def test_a_share_dropped_by_a_recount_is_not_released_twice() -> None:
    """The recount left out a session python-socketio had let go; its release then subtracted
    its share a second time, and the budget let through more than it holds."""
    host = Assembling()
    budget = messages.PendingAttachments(host)  # type: ignore[arg-type]
    states = {sid: EngineSession(origin=ALLOWED) for sid in "abcd"}
    for sid in "abcd":
        host._binary_packet[sid] = object()
        host.sessions[sid] = states[sid]
    assert budget.add("a", states["a"], 10) is None
    assert budget.add("b", states["b"], 40) is None
    del host._binary_packet["a"]  # complete, or disconnected, before its release
    assert budget.add("c", states["c"], 5) is None  # over the budget: recounted, 45 held
    budget.forget("a", states["a"])  # the release that follows
    assert budget.add("d", states["d"], 10) is not None  # 55 would be over 50
    assert budget.held == 45
