"""eventlet's WebSockets with the guard's limits, in-process (whitelist.engine.eventlet_websocket).

tests/test_websocket.py proves the limits on a live server (and ``unmask``
against eventlet's own); these drive the real ``GuardedWebSocketWSGI`` and
eventlet's ``RFC6455WebSocket`` over a ``socket.socketpair()``, with masked
frames built here, so that a broken cap or budget fails make check in seconds.
"""

from __future__ import annotations

import itertools
import random
import socket
import struct
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from eventlet.wsgi import Input

from tests.engine_server import engine_server
from tests.garbage import collector_off
from whitelist.engine.eventlet_websocket import (
    MESSAGE_TOO_BIG,
    GuardedRFC6455WebSocket,
    GuardedWebSocketWSGI,
    unmask,
)

LIMIT = 1000  # python-engineio's max_http_buffer_size, as each server gets it
WAIT = 10  # seconds a read may block before the test fails instead of hanging
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
NORMAL_CLOSE = 1000
BAD = "400 Bad Request"
SID = "the-session"  # what the handler says of its session, as PacketCheckingHandler does


def frame(payload: bytes, opcode: int = TEXT, *, fin: bool = True, seed: int = 0) -> bytes:
    """A frame as a client sends it: masked, with a mask of its own."""
    mask = random.Random(seed).randbytes(4)
    size = len(payload)
    if size < 126:
        length = bytes([0x80 | size])
    elif size < 1 << 16:
        length = bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        length = bytes([0x80 | 127]) + struct.pack("!Q", size)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([(0x80 if fin else 0) | opcode]) + length + mask + masked


def fragments(*parts: bytes) -> list[bytes]:
    """One text message sent in ``parts``, each its own frame."""
    opcodes = [TEXT] + [CONTINUATION] * (len(parts) - 1)
    return [
        frame(part, opcode, fin=i == len(parts) - 1, seed=i)
        for i, (part, opcode) in enumerate(zip(parts, opcodes, strict=True))
    ]


CLIENT_CLOSE = frame(struct.pack("!H", NORMAL_CLOSE), CLOSE)


@dataclass
class ServerFrame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int:
        return int(struct.unpack("!H", self.payload[:2])[0])


def server_frames(sent: bytes) -> list[ServerFrame]:
    """What the server wrote after its 101: unmasked frames."""
    head, _, rest = sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    frames = []
    while rest:
        opcode, size = rest[0] & 0x0F, rest[1] & 0x7F
        start = 2
        if size == 126:
            size, start = struct.unpack("!H", rest[2:4])[0], 4
        frames.append(ServerFrame(opcode, rest[start : start + size]))
        rest = rest[start + size :]
    return frames


class Budget:
    """``GuardHost.preconnect_limit``: the budget now, and the sessions it was asked about."""

    def __init__(self, value: int | None) -> None:
        self.value = value
        self.asked: list[str] = []

    def __call__(self, eio_sid: str) -> int | None:
        self.asked.append(eio_sid)
        return self.value


@dataclass
class Reader:
    """A WebSocket handler that reads every message until the connection ends."""

    eio_sid: str
    on_message: Callable[[int], object] = lambda count: None
    messages: list[Any] = field(default_factory=list)
    sockets: list[Any] = field(default_factory=list)

    def __call__(self, ws: Any) -> None:
        self.sockets.append(ws)
        while (message := ws.wait()) is not None:
            self.messages.append(message)
            self.on_message(len(self.messages))


class Trickle:
    """A socket whose reads return a few bytes at a time, as a slow network delivers them."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sizes = itertools.cycle([1, 2, 3, 5, 7, 11, 4, 6])

    def recv(self, size: int) -> bytes:
        return self._sock.recv(min(size, next(self._sizes)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@dataclass
class Served:
    messages: list[Any]
    frames: list[ServerFrame]
    ws: Any

    @property
    def close_code(self) -> int:
        closes = [each for each in self.frames if each.opcode == CLOSE]
        assert len(closes) == 1, self.frames
        return closes[0].close_code


def upgrade_environ(sock: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/engine.io/",
        "HTTP_CONNECTION": "Upgrade",
        "HTTP_UPGRADE": "websocket",
        "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
        "eventlet.input": Input(None, None, sock),
    }


def serve(
    frames: list[bytes],
    budget: Budget | None = None,
    *,
    trickle: bool = False,
    on_message: Callable[[int], object] = lambda count: None,
) -> Served:
    """Send ``frames`` and a close, then serve the connection to its end, in this thread."""
    eio = engine_server("eventlet", max_http_buffer_size=LIMIT)
    budget = budget or Budget(None)
    reader = Reader(SID, on_message)
    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        server_end.settimeout(WAIT)
        client_end.settimeout(WAIT)
        client_end.sendall(b"".join(frames) + CLIENT_CLOSE)
        sock = Trickle(server_end) if trickle else server_end
        environ = {**upgrade_environ(sock), "HTTP_SEC_WEBSOCKET_VERSION": "13"}
        app = GuardedWebSocketWSGI(reader, eio, budget)
        assert app(environ, lambda status, headers, *exc_info: None) == []
        sent = b""
        try:
            while chunk := client_end.recv(65536):
                sent += chunk
        except ConnectionResetError:  # the server closed with frames left unread
            pass
    assert set(budget.asked) <= {SID}
    (ws,) = reader.sockets
    return Served(reader.messages, server_frames(sent), ws)


def test_a_connection_unmasks_with_one_xor_per_read() -> None:
    assert serve([frame(b"4hello")]).ws._apply_mask is unmask


def test_a_closed_connection_is_freed_without_the_cyclic_garbage_collector() -> None:
    """Its limits once were closures the connection held over itself: a reference cycle
    that left every connection, its handler and session, to the collector."""
    with collector_off():
        served = serve([frame(b"4hello")])
        assert isinstance(served.ws, GuardedRFC6455WebSocket)
        freed = weakref.ref(served.ws)
        del served
        assert freed() is None


def test_a_frame_read_in_small_pieces_is_unmasked_at_every_offset() -> None:
    payload = random.Random(3).randbytes(LIMIT)
    served = serve([frame(payload, BINARY, seed=5), frame(b"4next", seed=6)], trickle=True)
    assert served.messages == [payload, "4next"]
    assert served.close_code == NORMAL_CLOSE


def test_a_message_of_the_limit_in_fragments_is_delivered_whole() -> None:
    parts = (b"a" * 400, b"b" * 400, b"c" * (LIMIT - 800))
    served = serve(fragments(*parts))
    assert served.messages == [b"".join(parts).decode()]
    assert served.close_code == NORMAL_CLOSE


def test_a_message_over_the_limit_in_fragments_closes_with_1009() -> None:
    """Each fragment is under eventlet's frame cap; together they are over the message cap."""
    served = serve(fragments(b"a" * 400, b"b" * 400, b"c" * (LIMIT - 799)))
    assert served.messages == []
    assert served.close_code == MESSAGE_TOO_BIG


def test_fragments_that_never_finish_are_capped_too() -> None:
    parts = [frame(b"a" * 300, TEXT, fin=False)] + [
        frame(b"b" * 300, CONTINUATION, fin=False, seed=i) for i in range(1, 5)
    ]
    served = serve(parts)
    assert served.close_code == MESSAGE_TOO_BIG


def test_before_a_welcome_a_message_above_the_budget_closes_with_1009() -> None:
    budget = Budget(100)
    served = serve([frame(b"4" + b"x" * 100)], budget)
    assert served.messages == []
    assert served.close_code == MESSAGE_TOO_BIG
    assert budget.asked == [SID]


def test_before_a_welcome_a_message_within_the_budget_is_delivered() -> None:
    served = serve([frame(b"4" + b"x" * 99)], Budget(100))
    assert served.messages == ["4" + "x" * 99]
    assert served.close_code == NORMAL_CLOSE


def test_a_budget_above_the_limit_leaves_the_limit() -> None:
    served = serve(fragments(b"a" * 600, b"b" * 600), Budget(10 * LIMIT))
    assert served.close_code == MESSAGE_TOO_BIG


def test_the_budget_is_read_as_it_stands_once_each_frame_is_in() -> None:
    """A connect sent over polling may be welcomed while the WebSocket waits (an upgrade)."""
    budget = Budget(100)
    served = serve(
        [frame(b"4first"), frame(b"4" + b"x" * 900)],
        budget,
        on_message=lambda count: setattr(budget, "value", None),
    )
    assert served.messages == ["4first", "4" + "x" * 900]
    assert served.close_code == NORMAL_CLOSE


@pytest.mark.parametrize("opcode", [PING, PONG])
def test_a_control_frame_is_never_capped(opcode: int) -> None:
    payload = b"p" * 125
    served = serve([frame(payload, opcode), frame(b"4after")], Budget(10))
    assert served.messages == ["4after"]
    assert served.close_code == NORMAL_CLOSE
    if opcode == PING:
        assert ServerFrame(PONG, payload) in served.frames


def test_a_control_frame_between_fragments_is_not_counted_in_the_message() -> None:
    parts = fragments(b"a" * 500, b"b" * 500)
    served = serve([parts[0], frame(b"p" * 125, PING), parts[1]])
    assert served.messages == ["a" * 500 + "b" * 500]


def test_a_connection_of_another_class_is_refused_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switched to the guarded class, a subclass eventlet might build one day would lose its
    own code without a word: the upgrade fails instead, naming the contract."""
    import eventlet.websocket

    class NewerWebSocket(eventlet.websocket.RFC6455WebSocket):
        pass

    monkeypatch.setattr(eventlet.websocket, "RFC6455WebSocket", NewerWebSocket)
    eio = engine_server("eventlet", max_http_buffer_size=LIMIT)
    ran: list[Any] = []
    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        environ = {**upgrade_environ(server_end), "HTTP_SEC_WEBSOCKET_VERSION": "13"}
        app = GuardedWebSocketWSGI(ran.append, eio, Budget(None))
        with pytest.raises(TypeError, match="NewerWebSocket.*whitelist.E112"):
            app(environ, lambda status, headers, *exc_info: None)
    assert ran == []


@pytest.mark.parametrize(
    ("changes", "status", "body"),
    [
        ({}, BAD, (b"",)),
        ({"HTTP_SEC_WEBSOCKET_VERSION": "99"}, "426 Upgrade Required", (b"",)),
        ({"HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_SEC_WEBSOCKET_KEY": None}, BAD, (b"",)),
        ({"HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_UPGRADE": None}, BAD, ()),
    ],
    ids=["2010 draft", "unknown version", "no key", "no upgrade"],
)
def test_a_bad_upgrade_is_answered_with_a_body_python_engineio_passes_on(
    changes: dict[str, str | None], status: str, body: tuple[bytes, ...]
) -> None:
    """eventlet answers with a list, which python-engineio takes for packets (HTTP 500).

    Its code for the 2010 draft, which no browser speaks, failed with a 500 of its own.
    """
    eio = engine_server("eventlet", max_http_buffer_size=LIMIT)
    ran: list[Any] = []
    answered: list[str] = []
    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        environ = upgrade_environ(server_end)
        for name, value in changes.items():
            if value is None:
                del environ[name]
            else:
                environ[name] = value
        app = GuardedWebSocketWSGI(ran.append, eio, Budget(None))
        result = app(environ, lambda answer, headers, *exc_info: answered.append(answer))
    assert answered == [status]
    assert result == body and isinstance(result, tuple)
    assert ran == []
