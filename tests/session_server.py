"""The live server of the session tests, and how they observe it (engine.sessions)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.live import LiveServer, wait_until
from tests.clients import polling_handshake, try_connect

ALLOWED = "http://localhost:5000"
REFUSED = "http://evil.example"


Stats = Callable[[], dict[str, int]]


def start_session_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """A server whose sessions must welcome a socket within one second."""
    return start_server(ALLOWED, WHITELIST_CONNECT_TIMEOUT="1")


@contextmanager
def observing(server: LiveServer) -> Iterator[Stats]:
    """Reads the server's resource usage through an allowed socket of its own (one connection)."""
    outcome, client = try_connect(
        server.url, origin=ALLOWED, namespace="/late", transport="websocket", keep=True
    )
    assert outcome.welcome is not None, outcome
    try:
        yield lambda: client.call("server_stats", namespace="/late", timeout=10)
    finally:
        client.disconnect()


def raw_request(server: LiveServer, request: bytes, *, read: bool = True) -> bytes:
    """Send ``request`` on a new connection; read the response head unless told not to."""
    with socket.create_connection(("127.0.0.1", server.ports[0]), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while read and b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def handshake(server: LiveServer, origin: str) -> str:
    return polling_handshake(server.url, origin)


def settles_to(stats: Stats, baseline: dict[str, int]) -> bool:
    """Do sessions, their deadlines and open sockets come back to ``baseline``?"""

    def back() -> bool:
        now = stats()
        return all(now[key] <= baseline[key] for key in ("sessions", "sockets", "deadlines"))

    return wait_until(back, timeout=20)
