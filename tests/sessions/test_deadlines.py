"""Engine.IO sessions end on time: a connect deadline that neither a slow handler nor a
stubborn client can stretch or shorten (engine.sessions)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from harness.live import LiveServer, wait_until
from tests.clients import polling_post, try_connect
from tests.sessions.server import (
    ALLOWED,
    REFUSED,
    handshake,
    settles_to,
)


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
