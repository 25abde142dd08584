"""WebSocket limits under eventlet: cheap unmasking, whole-message cap, pre-connect budget."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable, Iterator

import pytest
import requests
import websocket
from eventlet.websocket import RFC6455WebSocket

from harness.live import LiveServer
from tests.conftest import ALLOWED
from whitelist.engine.eventlet_websocket import MESSAGE_TOO_BIG, unmask

ENGINEIO_MESSAGE_LIMIT = 1_000_000  # python-engineio's max_http_buffer_size


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 1000, 65_537])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 6])
def test_unmask_gives_what_eventlet_gives(size: int, offset: int) -> None:
    generator = random.Random(size * 7 + offset)
    data = generator.randbytes(size)
    mask = tuple(generator.randrange(256) for _ in range(4))
    expected = RFC6455WebSocket._apply_mask(data, mask, length=size, offset=offset)
    assert unmask(data, mask, length=size, offset=offset) == expected


@contextlib.contextmanager
def open_websocket(server: LiveServer, origin: str = ALLOWED) -> Iterator[websocket.WebSocket]:
    """An Engine.IO WebSocket session, past its open packet; closed on the way out."""
    connection = websocket.create_connection(
        f"ws://127.0.0.1:{server.ports[0]}/socket.io/?EIO=4&transport=websocket",
        origin=origin,
        timeout=15,
    )
    try:
        assert connection.recv().startswith("0{")
        yield connection
    finally:
        connection.close()
        connection.shutdown()  # close() leaves the socket open once the server has closed it


def connect_namespace(connection: websocket.WebSocket, namespace: str = "/late") -> None:
    connection.send(f"40{namespace},")
    while True:  # the acknowledgement, then the welcome events
        message = connection.recv()
        if message.startswith(f"40{namespace},"):
            return


def close_code(connection: websocket.WebSocket) -> int | None:
    """Read until the server closes; its close code (None: no close frame came)."""
    return read_until_closed(connection)[0]


def read_until_closed(connection: websocket.WebSocket) -> tuple[int | None, list[str]]:
    """Read until the server closes: its close code, and the text messages before it."""
    texts: list[str] = []
    try:
        while True:
            frame = connection.recv_data_frame(control_frame=True)[1]
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(frame.data[:2], "big"), texts
            if frame.opcode == websocket.ABNF.OPCODE_TEXT:
                texts.append(frame.data.decode())
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return None, texts


def echo(connection: websocket.WebSocket, text: str) -> str:
    """Call /late's echo event with ``text`` and return its answer."""
    connection.send("42/late,7" + json.dumps(["echo", text]))
    while True:
        message = connection.recv()
        if message.startswith("43/late,7"):
            return json.loads(message[len("43/late,7") :])[0]


def test_a_welcomed_socket_may_send_a_large_message_intact(socket_server: LiveServer) -> None:
    with open_websocket(socket_server) as connection:
        connect_namespace(connection)
        text = "".join(random.Random(1).choices("abcdefghij", k=900_000))
        assert echo(connection, text) == text


def test_a_message_split_into_fragments_is_capped_as_a_whole(socket_server: LiveServer) -> None:
    with open_websocket(socket_server) as connection:
        connect_namespace(connection)
        fragment = b"x" * 65_536
        opcode = websocket.ABNF.OPCODE_TEXT
        # Each fragment is far below the 1 MB limit; the last one takes the message past it.
        # No more than that: bytes arriving after the server closed would make its kernel
        # answer with a reset, which can discard the close frame before it is read.
        for _ in range(ENGINEIO_MESSAGE_LIMIT // len(fragment) + 1):
            connection.send_frame(websocket.ABNF.create_frame(fragment, opcode, fin=0))
            opcode = websocket.ABNF.OPCODE_CONT
        assert close_code(connection) == MESSAGE_TOO_BIG


def test_the_server_closes_an_oversized_fragmented_message_with_1009(
    socket_server: LiveServer,
) -> None:
    with open_websocket(socket_server) as connection:
        connect_namespace(connection)
        fragment = b"x" * 400_000
        connection.send_frame(
            websocket.ABNF.create_frame(fragment, websocket.ABNF.OPCODE_TEXT, fin=0)
        )
        connection.send_frame(
            websocket.ABNF.create_frame(fragment, websocket.ABNF.OPCODE_CONT, fin=0)
        )
        connection.send_frame(
            websocket.ABNF.create_frame(fragment, websocket.ABNF.OPCODE_CONT, fin=1)
        )
        assert close_code(connection) == MESSAGE_TOO_BIG


def test_a_session_without_a_welcomed_socket_gets_a_small_budget(
    socket_server: LiveServer,
) -> None:
    with open_websocket(socket_server) as connection:
        # A connect python-socketio would handle, with 100 KB of auth: far below
        # 1 MB, far above the budget. The server closes before reading it all.
        connect = "40/late," + json.dumps({"token": "t" * 100_000})
        try:
            connection.send(connect)
        except (websocket.WebSocketException, ConnectionError):
            return  # closed while the message was still being sent
        code, texts = read_until_closed(connection)
        assert not any(text.startswith("40/late,") for text in texts), texts
        assert code in (MESSAGE_TOO_BIG, None)  # None: reset before the close frame was read


def test_the_budget_leaves_room_for_a_connect_with_auth(socket_server: LiveServer) -> None:
    with open_websocket(socket_server) as connection:
        token = "t" * 8_000
        connection.send("40/late," + json.dumps({"token": token}))
        while not (message := connection.recv()).startswith("40/late,"):
            assert not message.startswith("44"), message
        assert echo(connection, "after connect") == "after connect"


@pytest.mark.parametrize(
    "message", ["", "b!!!", "4" + "[" * 5000, "2" + "[" * 5000], ids=["empty", "base64", "4[", "2["]
)
def test_a_message_that_is_not_engineio_closes_the_connection_quietly(
    socket_server: LiveServer, message: str, shared_log: Callable[[], str]
) -> None:
    """python-engineio decoded it outside its error handling: a 500 after the 101."""
    with open_websocket(socket_server) as connection:
        connect_namespace(connection)
        connection.send(message)
        assert close_code(connection) in (None, 0, 1000)  # closed, for any reason but a limit
    assert "Unhandled error" not in shared_log()
    assert "message handler error" not in shared_log()


@pytest.mark.parametrize("version", [{}, {"Sec-WebSocket-Version": "99"}])
def test_an_upgrade_that_is_not_rfc_6455_gets_a_4xx(
    socket_server: LiveServer, version: dict[str, str], shared_log: Callable[[], str]
) -> None:
    """eventlet's 2010-draft code answered 500; its 400 became a 500 in python-engineio."""
    response = requests.get(
        f"{socket_server.url}/socket.io/",
        params={"EIO": "4", "transport": "websocket"},
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Origin": ALLOWED, **version},
        timeout=10,
    )
    assert 400 <= response.status_code < 500
    assert "Unhandled error" not in shared_log()
