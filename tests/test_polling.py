"""Long-polling requests python-engineio mishandles get a plain 4xx, and no traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from harness.live import LiveServer, wait_until
from tests.clients import polling_handshake, polling_post
from tests.conftest import ALLOWED


def open_session(server: LiveServer) -> str:
    return polling_handshake(server.url, ALLOWED)


def post(server: LiveServer, sid: str, body: bytes) -> requests.Response:
    return polling_post(server.url, sid, ALLOWED, body)


@pytest.mark.parametrize(
    "body",
    [b"4\x1e", b"bA", b"4[" + b"[" * 5000, b"\xff\xfe"],
    ids=["empty packet", "bad base64", "deep JSON", "not UTF-8"],
)
def test_a_payload_that_is_not_engineio_gets_400_and_ends_the_session(
    socket_server: LiveServer, body: bytes, shared_log: Callable[[], str]
) -> None:
    """python-engineio logged a 20-line traceback per such POST and answered 200."""
    sid = open_session(socket_server)
    answer = post(socket_server, sid, body)
    assert answer.status_code == 400
    assert "not an Engine.IO payload" in answer.json()["message"]
    poll = requests.get(
        f"{socket_server.url}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": sid},
        headers={"Origin": ALLOWED},
        timeout=30,
    )
    assert poll.text.split("\x1e")[-1] == "1"  # Engine.IO's CLOSE: the session is over
    assert "post request handler error" not in shared_log()


def test_a_post_to_a_closed_session_gets_400_not_500(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """python-engineio's POST path raised KeyError('Session is disconnected')."""
    sid = open_session(socket_server)
    assert post(socket_server, sid, b"1").status_code == 200  # the client closes it
    answer = post(socket_server, sid, b"40")
    assert answer.status_code == 400
    assert "Unhandled error" not in shared_log()


def test_a_socketio_packet_nested_too_deep_closes_the_session_quietly(
    socket_server: LiveServer,
    shared_log: Callable[[], str],
) -> None:
    """python-socketio's RecursionError reached python-engineio's traceback log."""
    sid = open_session(socket_server)
    nested = b"42" + b"[" * 3000 + b"]" * 3000
    assert post(socket_server, sid, nested).status_code == 200  # Engine.IO's part is sound
    # The message is handled in a thread of its own, which closes the session:
    # then a pong to it is refused.
    assert wait_until(lambda: post(socket_server, sid, b"3").status_code == 400)
    assert "message handler error" not in shared_log()


def test_a_connect_and_a_close_in_one_payload_leave_no_traceback(
    socket_server: LiveServer,
    shared_log: Callable[[], str],
) -> None:
    """The connect was handled after the close, and python-socketio failed on its environ."""
    for _ in range(20):
        sid = open_session(socket_server)
        assert post(socket_server, sid, b"40\x1e1").status_code == 200
    assert "KeyError" not in shared_log()
