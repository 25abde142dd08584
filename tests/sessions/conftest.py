"""The session tests' server, one per module, and its resource usage as they read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.live import LiveServer
from tests.clients import try_connect
from tests.sessions.server import ALLOWED, Stats


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """A server whose sessions must welcome a socket within one second."""
    return start_server(ALLOWED, WHITELIST_CONNECT_TIMEOUT="1")


@pytest.fixture
def observer(server: LiveServer) -> Iterator[Stats]:
    """Reads the server's resource usage through an allowed socket of its own (one connection)."""
    outcome, client = try_connect(
        server.url, origin=ALLOWED, namespace="/late", transport="websocket", keep=True
    )
    assert outcome.welcome is not None, outcome
    try:
        yield lambda: client.call("server_stats", namespace="/late", timeout=10)
    finally:
        client.disconnect()
