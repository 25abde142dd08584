"""Closed and refused Engine.IO sessions leave nothing behind: no session, no thread, no
descriptor, no sleeping ping timer (engine.sessions)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import requests
import websocket

from harness.live import LiveServer, wait_until
from tests.sessions.server import (
    ALLOWED,
    REFUSED,
    handshake,
    raw_request,
    settles_to,
)

ATTEMPTS = 60


def post_and_hang_up(server: LiveServer, sid: str, head: str, body: bytes = b"") -> None:
    request = (
        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
        f"Host: localhost\r\nOrigin: {REFUSED}\r\nContent-Type: text/plain\r\n{head}\r\n"
    )
    raw_request(server, request.encode() + body, read=False)


def close_wait_sockets(server: LiveServer) -> int:
    """Connections the client closed but the server still holds."""
    listing = subprocess.run(
        ["ss", "-Htn", "state", "close-wait", f"sport = :{server.ports[0]}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(listing.stdout.splitlines())


@pytest.mark.parametrize(
    ("what", "head", "body"),
    [
        ("an unknown packet type", "Content-Length: 1\r\n", b"6"),
        ("only the head of an oversize body", "Content-Length: 1000001\r\n", b""),
    ],
)
def test_a_bad_polling_post_and_a_hang_up_leave_nothing_behind(
    server: LiveServer,
    observer: Callable[[], dict[str, int]],
    what: str,
    head: str,
    body: bytes,
) -> None:
    baseline = observer()
    for _ in range(ATTEMPTS):
        post_and_hang_up(server, handshake(server, REFUSED), head, body)
    assert settles_to(observer, baseline), (what, baseline, observer())
    assert wait_until(lambda: close_wait_sockets(server) == 0, timeout=20)


def connect_refused_over_polling(server: LiveServer) -> str:
    """Open a session, send the Socket.IO connect, read the refusal; never close it."""
    sid = handshake(server, REFUSED)
    query = {"EIO": "4", "transport": "polling", "sid": sid}
    headers = {"Origin": REFUSED, "Content-Type": "text/plain"}
    url = f"{server.url}/socket.io/"
    assert requests.post(url, params=query, headers=headers, data="40", timeout=10).ok
    return requests.get(url, params=query, headers=headers, timeout=10).text


def connect_refused_over_websocket(server: LiveServer) -> str:
    """The same over a WebSocket, which stays open on the client's side."""
    connection = websocket.create_connection(
        f"ws://127.0.0.1:{server.ports[0]}/socket.io/?EIO=4&transport=websocket",
        origin=REFUSED,
        timeout=10,
    )
    opened.append(connection)
    assert connection.recv().startswith("0{")
    connection.send("40")
    refusal = connection.recv()
    assert connection.recv() == "1"  # Engine.IO's CLOSE follows the refusal at once
    return refusal


opened: list[websocket.WebSocket] = []


@pytest.mark.parametrize(
    "connect_refused", [connect_refused_over_polling, connect_refused_over_websocket]
)
def test_a_refused_client_keeps_no_session(
    server: LiveServer,
    observer: Callable[[], dict[str, int]],
    connect_refused: Callable[[LiveServer], str],
) -> None:
    baseline = observer()
    try:
        for _ in range(10):
            assert "Who invited you to this party?" in connect_refused(server)
        assert wait_until(lambda: observer()["sessions"] <= baseline["sessions"], timeout=20)
        assert observer()["deadlines"] <= baseline["deadlines"]
    finally:
        for connection in opened:
            connection.close()
            connection.shutdown()
        opened.clear()


def test_the_refusal_reaches_a_polling_client_before_its_session_closes(
    server: LiveServer,
) -> None:
    sid = handshake(server, REFUSED)
    query = {"EIO": "4", "transport": "polling", "sid": sid}
    url = f"{server.url}/socket.io/"
    headers = {"Origin": REFUSED, "Content-Type": "text/plain"}
    assert requests.post(url, params=query, headers=headers, data="40", timeout=10).ok
    refusal = requests.get(url, params=query, headers=headers, timeout=10).text
    assert refusal.startswith("44{") and "Who invited you" in refusal, refusal
    closing = requests.get(url, params=query, headers=headers, timeout=30).text
    assert closing == "1"  # Engine.IO's CLOSE, long before the 25 s ping would come


def test_a_closed_sessions_ping_timer_goes_with_it(
    server: LiveServer, observer: Callable[[], dict[str, int]]
) -> None:
    """python-engineio's timers slept out their 25 s after the session closed."""
    baseline = observer()
    for _ in range(100):
        sid = handshake(server, ALLOWED)
        closed = requests.post(
            f"{server.url}/socket.io/",
            params={"EIO": "4", "transport": "polling", "sid": sid},
            headers={"Origin": ALLOWED, "Content-Type": "text/plain"},
            data="1",
            timeout=10,
        )
        assert closed.ok
    # Well inside the 25 s the timers would sleep.
    assert wait_until(lambda: observer()["green_threads"] <= baseline["green_threads"] + 5, 10)
