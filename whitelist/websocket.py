"""WebSockets under eventlet: cheap unmasking, a cap per message, a small budget before connect.

python-engineio serves WebSockets under eventlet with ``eventlet.websocket``,
which unmasks every client frame one byte at a time in Python (one 999 KB frame
cost 230 ms of CPU and held up every other socket for as long) and caps each
frame but not the message, so a fragmented message never finished could grow
to 30 MB. ``GuardedWebSocketWSGI`` is installed as python-engineio's websocket
class (``upstream.use_websocket_class``) and changes each connection it opens:

* frames are unmasked with one big-integer XOR (about a millisecond per MB);
* a message, however fragmented, may hold at most ``max_http_buffer_size``
  bytes (python-engineio's own limit, 1 MB by default), else close code 1009;
* until its session has a welcomed socket, a connection may send messages of at
  most ``WHITELIST_PRECONNECT_BYTES`` (a Socket.IO connect with its auth fits);
* only RFC 6455 is spoken, not the 2010 draft eventlet also supports.

The threading mode's WebSocket (simple-websocket on wsproto) already unmasks
with translation tables and caps whole messages; it gets no pre-connect budget.

In both modes, ``engineio_packets_only`` ends a connection at the first message
that is not an Engine.IO packet (empty, bad base64, JSON nested past Python's
recursion limit). python-engineio decodes WebSocket messages outside its error
handling: the exception left the session open and its writer waiting until the
ping timeout, and reached the WSGI server as a 500 after the 101.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from engineio import packet as eio_packet
from engineio.async_drivers.eventlet import WebSocketWSGI
from eventlet.websocket import FailedConnectionError

from .ratelimited_log import RateLimitedLog

logger = logging.getLogger(__name__)
malformed_log = RateLimitedLog(logger)

# RFC 6455: "Message Too Big".
MESSAGE_TOO_BIG = 1009


def unmask(data: bytes, mask: Sequence[int], length: int | None = None, offset: int = 0) -> bytes:
    """``data`` XOR the 4-byte ``mask``, starting ``offset`` bytes into the frame."""
    size = len(data) if length is None else length
    key = bytes(mask[(offset + i) % 4] for i in range(4))
    repeated = (key * (size // 4 + 1))[:size]
    mixed = int.from_bytes(data[:size], "little") ^ int.from_bytes(repeated, "little")
    return mixed.to_bytes(size, "little")


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


class GuardedWebSocketWSGI(WebSocketWSGI):
    """python-engineio's eventlet WebSocket, with the limits above on every connection.

    ``preconnect_limit(eio_sid)`` is the message size allowed now: the small
    budget while the session has no welcomed socket, None once it has one.
    """

    def __init__(
        self,
        handler: Callable[..., Any],
        server: Any,
        preconnect_limit: Callable[[str], int | None],
    ) -> None:
        super().__init__(handler, server)
        self.eio_sid: str = getattr(handler, "eio_sid", "")
        self.preconnect_limit = preconnect_limit
        # The 2010 draft (hixie-76) no browser speaks: eventlet's code for it failed
        # with HTTP 500 on an upgrade without Sec-WebSocket-Version or Origin.
        self.support_legacy_versions = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        answered: list[str] = []

        def noting_status(status: str, headers: list[Any], *exc_info: Any) -> Any:
            answered.append(status)
            return start_response(status, headers, *exc_info)

        result = super().__call__(environ, noting_status)
        # eventlet answers a bad upgrade with a list of bytes, which python-engineio
        # takes for packets to encode (HTTP 500); a tuple it passes on as the body.
        return tuple(result) if answered else result

    def _handle_hybi_request(self, environ: dict[str, Any]) -> Any:
        ws = super()._handle_hybi_request(environ)
        ws._apply_mask = unmask
        ws._recv_frame = self._capped_frames(ws, ws._recv_frame)
        return ws

    def _capped_frames(self, ws: Any, recv_frame: Callable[..., Any]) -> Callable[..., Any]:
        message_limit = self.max_frame_length

        def recv_capped_frame(message: Any = None) -> Any:
            budget = self.preconnect_limit(self.eio_sid)
            limit = message_limit if budget is None else min(budget, message_limit)
            ws.max_frame_length = limit  # eventlet refuses a longer frame before reading it
            message = recv_frame(message=message)
            if not message.opcode & 8 and sum(map(len, message.data)) > limit:
                raise FailedConnectionError(
                    MESSAGE_TOO_BIG, f"Message above the limit of {limit} bytes."
                )
            return message

        return recv_capped_frame
