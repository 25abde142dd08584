"""The suite's own Socket.IO client (tests/clients.py) leaves no socket open.

A socket left open until the garbage collector frees its owner's reference
cycle fails whichever test is running then (its ResourceWarning is an error
here), not the one that left it.
"""

from __future__ import annotations

import websocket

from harness.live import LiveServer
from tests.clients import PromptlyClosedWebSocket

REFUSED = "https://evil.test"


def test_a_websocket_the_server_closed_first_is_closed_by_close(socket_server: LiveServer) -> None:
    """websocket-client's close() returned at once, its socket open, once it had read the
    server's close frame: python-engineio's reader thread reads it, racing the disconnect."""
    endpoint = socket_server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(
        endpoint, origin=REFUSED, class_=PromptlyClosedWebSocket, timeout=10
    )
    try:
        assert ws.recv().startswith("0")
        ws.send("40")
        assert ws.recv().startswith("44")
        for _ in range(3):  # Engine.IO's CLOSE, then the close frame, which ends the reading
            if not ws.connected:
                break
            ws.recv()
        assert not ws.connected
        ws.close()
        assert ws.sock is None
    finally:
        ws.shutdown()
