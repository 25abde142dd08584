"""WebSocket messages python-engineio cannot decode end the connection, in every async mode.

python-engineio decodes WebSocket messages outside its error handling: an empty
message, bad base64 after ``b`` or JSON nested past Python's recursion limit
raised out of its handler, left the session open and its writer waiting until
the ping timeout, and reached the WSGI server as a 500 after the 101.
``PacketCheckingHandler`` hands python-engineio's handler a socket whose
``wait()`` checks each message first (``upstream.use_guarded_websockets``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet

from whitelist.core.ratelimited_log import RateLimitedLog

logger = logging.getLogger(__name__)
malformed_log = RateLimitedLog(logger)


class EngineIOPacketsOnly:
    """A WebSocket whose ``wait()`` ends the connection at a message python-engineio cannot decode.

    Returning None is how python-engineio learns that the client went away: it
    then stops the writer and closes the session as usual.
    """

    def __init__(self, ws: Any, eio_sid: str) -> None:
        self._ws = ws
        self._eio_sid = eio_sid

    def wait(self) -> Any:
        message = self._ws.wait()
        if message is None:
            return None
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
        self.eio_sid: str = getattr(getattr(handler, "__self__", None), "sid", "")

    def __call__(self, ws: Any) -> Any:
        return self.handler(EngineIOPacketsOnly(ws, self.eio_sid))
