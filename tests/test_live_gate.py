"""The gate in front of a real runsocket: what reaches python-engineio, and what never does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from harness.live import LiveServer

ALLOWED = "http://allowed.test"
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(ALLOWED)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_jsonp_with_an_upgrade_header_opens_no_session(server: LiveServer, transport: str) -> None:
    response = requests.get(
        f"{server.url}/socket.io/?EIO=4&transport={transport}&j=0",
        headers={"Origin": ALLOWED, **UPGRADE},
        timeout=10,
    )
    assert (response.status_code, response.json()) == (400, {"error": "JSONP is not supported"})
