"""Every WebSocket message is an Engine.IO packet, and eventlet's WebSockets get their limits.

python-engineio decodes WebSocket messages outside its error handling: an empty
message, bad base64 after ``b`` or JSON nested past Python's recursion limit
raised out of its handler, left the session open and its writer waiting until
the ping timeout, and reached the WSGI server as a 500 after the 101.
``use_guarded_websockets`` wraps the WebSocket class in the server's own copy
of python-engineio's driver table (``Server._async``, ``whitelist.E110``):
python-engineio's handler gets a socket whose ``wait()`` checks each message
first, and the connection is one with limits: ``GuardedWebSocketWSGI`` under
eventlet (``eventlet_websocket``), ``WSProtoWebSocket`` under gevent and
threading (``wsproto_websocket``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet

from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine import sockets
from whitelist.engine.host import GuardHost
from whitelist.engine.packets import decodes_plainly
from whitelist.engine.wsproto_websocket import WSProtoWebSocket

logger = logging.getLogger(__name__)
# The modes python-engineio serves with simple-websocket: theirs is WSProtoWebSocket.
WSPROTO_MODES = ("gevent", "threading")
malformed_log = RateLimitedLog(logger)


class EngineIOPacketsOnly:
    """A WebSocket whose ``wait()`` ends the connection at a message python-engineio cannot decode.

    Returning None is how python-engineio learns that the client went away: it
    then stops the writer and closes the session as usual.
    """

    def __init__(self, ws: Any, eio_sid: str) -> None:
        self._ws = ws
        self._eio_sid = eio_sid
        # Bound once: python-engineio sends every packet through here, and each lookup
        # through __getattr__ cost a failed look-up and a Python call. It also reads the
        # connection's socket three times (to set its timeout) and closes it once.
        self.send = ws.send
        for name in ("socket", "close"):
            if hasattr(ws, name):
                setattr(self, name, getattr(ws, name))

    def wait(self) -> Any:
        message = self._ws.wait()
        if message is None or decodes_plainly(message):
            return message
        try:
            eio_packet.Packet(encoded_packet=message)
        except Exception as error:  # what python-engineio would raise just after
            malformed_log.log(
                "malformed Engine.IO packets",
                logging.WARNING,
                "Closing the WebSocket of session %s: it sent a message that is not an "
                "Engine.IO packet (%s)",
                self._eio_sid,
                type(error).__name__,
            )
            return None
        return message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


class PacketCheckingHandler:
    """python-engineio's WebSocket handler, given an ``EngineIOPacketsOnly`` socket."""

    def __init__(self, handler: Callable[[Any], Any]) -> None:
        self.handler = handler
        # python-engineio passes its bound Socket._websocket_handler: the session's sid.
        self.socket = sockets.owning_socket(handler)
        self.eio_sid: str = self.socket.sid if self.socket is not None else ""

    def __call__(self, ws: Any) -> Any:
        try:
            return self.handler(EngineIOPacketsOnly(ws, self.eio_sid))
        except OSError:
            # python-engineio answers an upgrade's probe unguarded: a client that closed
            # the WebSocket by then (a refused page, a tab closed) raised out of the
            # handler under threading and gevent, an HTTP 500 and a traceback, and left
            # the session "upgrading", its polls answered with nothing. A failed
            # upgrade, ended as python-engineio ends one.
            if self.socket is not None and not self.socket.upgraded:
                self.socket.upgrading = False
            return []


def use_guarded_websockets(server: GuardHost) -> None:
    """Serve this server's WebSockets through ``PacketCheckingHandler``, with limits."""
    websocket_class = server.eio._async["websocket"]
    if server.eio.async_mode == "eventlet":
        from whitelist.engine.eventlet_websocket import GuardedWebSocketWSGI

        websocket_class = functools.partial(
            GuardedWebSocketWSGI, preconnect_limit=server.preconnect_limit
        )
    elif server.eio.async_mode in WSPROTO_MODES:
        websocket_class = functools.partial(
            WSProtoWebSocket, preconnect_limit=server.preconnect_limit
        )

    def websocket(handler: Any, eio_server: Any) -> Any:
        return websocket_class(PacketCheckingHandler(handler), eio_server)

    # A copy: python-engineio's table is shared by every server in the process.
    server.eio._async = {**server.eio._async, "websocket": websocket}
