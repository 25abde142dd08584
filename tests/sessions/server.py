"""What the session tests share: their origins and how they talk to and read the server."""

from __future__ import annotations

import socket
from collections.abc import Callable

from harness.live import LiveServer, wait_until
from tests.clients import polling_handshake

ALLOWED = "http://localhost:5000"
REFUSED = "http://evil.example"


Stats = Callable[[], dict[str, int]]


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
