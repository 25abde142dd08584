"""The gevent and threading modes' WebSocket (whitelist.engine.wsproto_websocket), in-process.

Over a real socket pair, with frames a client would send: the handshake, the
whole-message cap and the pre-connect budget, pings, closes from either side,
and how each WSGI server is told the connection is spent. The live servers'
tests (tests/test_websocket.py, run on gevent by test_runsocket_gevent.py, and
test_gunicorn.py's worker tests) prove the same through python-engineio.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import websocket

from whitelist.engine.wsproto_websocket import (
    MESSAGE_TOO_BIG,
    NoSocketError,
    WSProtoWebSocket,
    accept_token,
    connection_socket,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example
LIMIT = 4096
TEXT = websocket.ABNF.OPCODE_TEXT
CONT = websocket.ABNF.OPCODE_CONT


def frame(data: bytes | str, opcode: int = TEXT, fin: int = 1) -> bytes:
    """A masked client frame."""
    return websocket.ABNF.create_frame(data, opcode, fin=fin).format()


def read_frame(client: socket.socket) -> tuple[int, bytes]:
    """The next (unmasked) server frame: its opcode and payload."""
    head = recv_exactly(client, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(recv_exactly(client, 2), "big")
    elif length == 127:
        length = int.from_bytes(recv_exactly(client, 8), "big")
    return head[0] & 0x0F, recv_exactly(client, length)


def recv_exactly(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_head(client: socket.socket) -> str:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        chunk = client.recv(1)
        if not chunk:
            break
        head += chunk
    return head.decode()


class Served:
    """A WSProtoWebSocket serving one end of a socket pair in a thread; the client's end."""

    def __init__(self, budget: int | None = None, server: str = "gunicorn.socket") -> None:
        self.client, self.served = socket.socketpair()
        self.client.settimeout(10)
        self.received: list[Any] = []
        self.outcome: list[Any] = []
        self.ws = WSProtoWebSocket(
            self.handler,
            SimpleNamespace(max_http_buffer_size=LIMIT, async_mode="threading"),
            preconnect_limit=lambda eio_sid: budget,
        )
        environ = {"HTTP_SEC_WEBSOCKET_KEY": KEY, server: self.served}
        self.thread = threading.Thread(target=self.serve, args=(environ,), daemon=True)
        self.thread.start()
        self.head = read_head(self.client)

    def handler(self, ws: Any) -> list[Any]:
        while (message := ws.wait()) is not None:
            self.received.append(message)
            ws.send(f"echo:{len(message)}")
        return []

    def serve(self, environ: dict[str, Any]) -> None:
        try:
            self.outcome.append(self.ws(environ, lambda *args: None))
        except BaseException as error:  # what the WSGI server would see
            self.outcome.append(error)

    def ended(self) -> Any:
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.outcome[0]


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def make(**options: Any) -> Served:
        made.append(Served(**options))
        return made[-1]

    yield make
    for each in made:
        each.client.close()
        each.served.close()  # the WSGI server's part


def test_the_accept_token_is_rfc_6455s() -> None:
    assert accept_token(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_upgrade_is_answered_without_extensions(served: Callable[..., Served]) -> None:
    """simple-websocket accepted permessage-deflate whenever offered: unbounded inflation."""
    connection = served()
    assert connection.head.startswith("HTTP/1.1 101 ")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in connection.head
    assert "extensions" not in connection.head.lower()


def test_messages_arrive_whole_and_answers_go_out(served: Callable[..., Served]) -> None:
    connection = served()
    connection.client.sendall(frame("4he", fin=0) + frame("llo", CONT) + frame(b"\x01", 2))
    assert read_frame(connection.client) == (TEXT, b"echo:6")
    assert read_frame(connection.client) == (TEXT, b"echo:1")
    assert connection.received == ["4hello", b"\x01"]


def test_a_fragmented_message_past_the_limit_is_closed_with_1009(
    served: Callable[..., Served],
) -> None:
    connection = served()
    part = b"x" * 1500
    connection.client.sendall(frame(part, fin=0) + frame(part, CONT, 0) + frame(part, CONT, 0))
    opcode, payload = read_frame(connection.client)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (8, MESSAGE_TOO_BIG)
    assert connection.received == []
    assert isinstance(connection.ended(), StopIteration)


def test_a_session_without_a_welcomed_socket_gets_the_budget(
    served: Callable[..., Served],
) -> None:
    connection = served(budget=100)
    connection.client.sendall(frame("4" + "a" * 99))
    assert read_frame(connection.client) == (TEXT, b"echo:100")
    connection.client.sendall(frame("4" + "a" * 100))
    opcode, payload = read_frame(connection.client)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (8, MESSAGE_TOO_BIG)


def test_text_is_counted_in_utf8_bytes(served: Callable[..., Served]) -> None:
    connection = served(budget=100)
    connection.client.sendall(frame("4" + "é" * 60))  # 61 characters, 121 bytes
    opcode, payload = read_frame(connection.client)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (8, MESSAGE_TOO_BIG)


def test_a_ping_is_answered(served: Callable[..., Served]) -> None:
    connection = served()
    connection.client.sendall(frame(b"are you there", websocket.ABNF.OPCODE_PING))
    assert read_frame(connection.client) == (websocket.ABNF.OPCODE_PONG, b"are you there")


def test_a_clients_close_is_answered_and_ends_the_handler(served: Callable[..., Served]) -> None:
    connection = served(server="werkzeug.socket")
    connection.client.sendall(frame((1000).to_bytes(2, "big"), websocket.ABNF.OPCODE_CLOSE))
    opcode, payload = read_frame(connection.client)
    assert (opcode, payload[:2]) == (8, (1000).to_bytes(2, "big"))
    assert isinstance(connection.ended(), ConnectionError)  # how werkzeug learns it


def test_a_protocol_error_is_closed_with_its_code(served: Callable[..., Served]) -> None:
    connection = served()
    connection.client.sendall(frame(b"\xff\xfe", TEXT))  # not UTF-8
    opcode, payload = read_frame(connection.client)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (8, 1007)


def test_a_client_gone_ends_the_handler(served: Callable[..., Served]) -> None:
    connection = served()
    connection.client.close()
    assert isinstance(connection.ended(), StopIteration)
    with pytest.raises(OSError):
        connection.ws.send("4late")


def test_the_servers_close_ends_a_waiting_handler(served: Callable[..., Served]) -> None:
    """python-engineio's writer closes while its handler waits for the client."""
    connection = served()
    connection.ws.close()
    opcode, payload = read_frame(connection.client)
    assert (opcode, payload[:2]) == (8, (1000).to_bytes(2, "big"))
    assert isinstance(connection.ended(), StopIteration)


def test_an_upgrade_without_a_key_is_a_400() -> None:
    answered: list[str] = []
    ws = WSProtoWebSocket(
        lambda ws: [], SimpleNamespace(max_http_buffer_size=LIMIT), lambda eio_sid: None
    )
    body = ws({}, lambda status, headers: answered.append(status))
    assert answered == ["400 Bad Request"] and isinstance(body, tuple)


def test_a_server_that_gives_no_socket_is_named() -> None:
    with pytest.raises(NoSocketError, match="gives no socket"):
        connection_socket({"SERVER_SOFTWARE": "someserver/1.0"})


def test_gevents_upgrade_stream_gives_its_socket() -> None:
    """gevent.pywsgi passes an upgrade's buffered reader as wsgi.input (E115 checks it)."""
    left, right = socket.socketpair()
    with left, right, left.makefile("rb", -1) as stream:
        environ = {"SERVER_SOFTWARE": "gevent/26.9 Python/3.11", "wsgi.input": stream}
        assert connection_socket(environ) == (left, "gevent")


def test_a_message_in_many_fragments_arrives_whole_and_is_counted_by_its_bytes(
    served: Callable[..., Served],
) -> None:
    """Parts go into one buffer: a list of them cost 40 bytes or more each, so a message
    of empty or 1-byte fragments held many times its counted size (a review found it)."""
    connection = served()
    empty = frame(b"", CONT, 0)
    ones = b"".join(frame(b"a", CONT, 0) + empty for _ in range(LIMIT - 2))
    connection.client.sendall(frame("4", fin=0) + ones + frame(b"b", CONT))
    assert read_frame(connection.client) == (TEXT, f"echo:{LIMIT}".encode())
    assert connection.received == ["4" + "a" * (LIMIT - 2) + "b"]
    connection.client.sendall(frame("4", fin=0) + ones + frame(b"bc", CONT))
    opcode, payload = read_frame(connection.client)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (8, MESSAGE_TOO_BIG)


def test_under_gevent_pywsgi_the_request_reader_is_closed_after_the_websocket() -> None:
    """gevent.pywsgi reads the next request unless its reader is closed: a bare gevent
    server took the client's close frame for a request line (runsocket's own handler
    closes the connection anyway)."""
    client, served = socket.socketpair()
    with client, served, served.makefile("rb", -1) as stream:
        ws = WSProtoWebSocket(
            lambda ws: [], SimpleNamespace(max_http_buffer_size=LIMIT), lambda eio_sid: None
        )
        environ = {
            "HTTP_SEC_WEBSOCKET_KEY": KEY,
            "SERVER_SOFTWARE": "gevent/26.9 Python/3.11",
            "wsgi.input": stream,
        }
        assert ws(environ, lambda *args: None) == []
        assert stream.closed
