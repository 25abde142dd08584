"""Engine.IO sessions end on time and never hold a thread or a descriptor (engine.sessions)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import websocket

from harness.live import LiveServer, wait_until
from tests.clients import polling_handshake, polling_post, try_connect

ALLOWED = "http://localhost:5000"
REFUSED = "http://evil.example"
ATTEMPTS = 60


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """A server whose sessions must welcome a socket within one second."""
    return start_server(ALLOWED, WHITELIST_CONNECT_TIMEOUT="1")


@pytest.fixture
def observer(server: LiveServer) -> Iterator[Callable[[], dict[str, int]]]:
    """Reads the server's resource usage through an allowed socket of its own (one connection)."""
    outcome, client = try_connect(
        server.url, origin=ALLOWED, namespace="/late", transport="websocket", keep=True
    )
    assert outcome.welcome is not None, outcome
    yield lambda: client.call("server_stats", namespace="/late", timeout=10)
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


def settles_to(stats: Callable[[], dict[str, int]], baseline: dict[str, int]) -> bool:
    """Do sessions, their deadlines and open sockets come back to ``baseline``?"""

    def back() -> bool:
        now = stats()
        return all(now[key] <= baseline[key] for key in ("sessions", "sockets", "deadlines"))

    return wait_until(back, timeout=20)


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


def test_a_handshake_that_never_connects_expires(
    server: LiveServer, observer: Callable[[], dict[str, int]]
) -> None:
    baseline = observer()
    sids = [handshake(server, origin) for origin in (ALLOWED, REFUSED) for _ in range(10)]
    # Opened (the first ones may have expired already on a slow machine), then gone.
    assert observer()["sessions"] > baseline["sessions"]
    assert settles_to(observer, baseline), (baseline, observer())
    poll = requests.get(
        f"{server.url}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": sids[0]},
        headers={"Origin": ALLOWED},
        timeout=10,
    )
    assert poll.status_code == 400  # the session is gone


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


def test_an_allowed_client_outlives_the_connect_timeout(
    server: LiveServer, observer: Callable[[], dict[str, int]]
) -> None:
    outcome, client = try_connect(server.url, origin=ALLOWED, namespace="/late", keep=True)
    assert outcome.welcome is not None
    try:
        sessions = observer()["sessions"]
        assert not wait_until(lambda: observer()["sessions"] < sessions, timeout=3)
        assert client.call("echo", "still here", namespace="/late", timeout=10) == "still here"
    finally:
        client.disconnect()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_connect_handler_slower_than_the_connect_timeout_still_welcomes(
    server: LiveServer, observer: Callable[[], dict[str, int]], transport: str
) -> None:
    """The deadline ran while the handler decided: the session was closed mid-connect."""
    baseline = observer()
    outcome, client = try_connect(
        server.url, origin=ALLOWED, namespace="/slow", transport=transport, keep=True
    )
    try:
        assert outcome.welcome is not None, outcome
        assert not wait_until(lambda: not client.connected, timeout=3)
    finally:
        client.disconnect()
        client.eio.http.close()  # its keep-alive connections, which the server would count
    assert settles_to(observer, baseline), (baseline, observer())


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


def post_connect(server: LiveServer, sid: str, origin: str, packet: str = "40") -> int:
    """POST a Socket.IO connect on a polling session; the HTTP status."""
    return polling_post(server.url, sid, origin, packet).status_code


def test_a_client_repeating_a_refused_connect_holds_up_no_other_session(
    server: LiveServer, observer: Callable[[], dict[str, int]]
) -> None:
    """Its deadline was moved in place while the sweep read deadlines in insertion order."""
    baseline = observer()
    stubborn = handshake(server, REFUSED)
    assert post_connect(server, stubborn, REFUSED) == 200
    others = [handshake(server, REFUSED) for _ in range(10)]
    for sid in others:
        assert post_connect(server, sid, REFUSED) == 200

    def others_closed_while_refused_again() -> bool:
        post_connect(server, stubborn, REFUSED)  # refused again, or its session is gone
        return observer()["sessions"] <= baseline["sessions"] + 1

    assert wait_until(others_closed_while_refused_again, timeout=8)


@pytest.mark.parametrize("origin", [ALLOWED, REFUSED])
def test_connects_to_an_unknown_namespace_never_restart_the_clock(
    server: LiveServer, origin: str
) -> None:
    """python-socketio refuses them without the guard: each one restarted the connect clock."""
    sid = handshake(server, origin)
    statuses = []
    # 18 s at most: the connect timeout is runsocket's default, 10 s (3 s for a refused
    # origin), then a polling session is told CLOSE and closed 2 s later.
    for _ in range(90):
        statuses.append(post_connect(server, sid, origin, "40/no-such-namespace,"))
        if statuses[-1] != 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 400, statuses  # the session was closed on time
