"""WebSockets under eventlet: cheap unmasking, a cap per message, a small budget before connect.

python-engineio serves WebSockets under eventlet with ``eventlet.websocket``,
which unmasks every client frame one byte at a time in Python (one 999 KB frame
cost 230 ms of CPU and held up every other socket for as long) and caps each
frame but not the message, so a fragmented message never finished could grow
to 30 MB. ``GuardedWebSocketWSGI`` is installed as python-engineio's websocket
class (``websockets.use_guarded_websockets``) and changes each connection it opens:

* frames are unmasked with one big-integer XOR (about a millisecond per MB);
* a message, however fragmented, may hold at most ``max_http_buffer_size``
  bytes (python-engineio's own limit, 1 MB by default), else close code 1009;
* until its session has a welcomed socket, a connection may send messages of at
  most ``WHITELIST_PRECONNECT_BYTES`` (a Socket.IO connect with its auth fits);
* only RFC 6455 is spoken, not the 2010 draft eventlet also supports.

gevent and threading get the same limits from ``wsproto_websocket``. Every mode
checks that messages are Engine.IO packets (``whitelist.engine.websockets``).

This reaches eventlet's private ``RFC6455WebSocket`` internals (``_recv_frame``,
``_apply_mask``, ``max_frame_length``, ``_handle_hybi_request``), and switches
the class of each connection eventlet builds to ``GuardedRFC6455WebSocket``;
checked against eventlet 0.41.3 (``whitelist.E112``); ``make test`` runs the
WebSocket tests on it.
Imported only in eventlet mode: the app itself does not need eventlet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engineio.async_drivers.eventlet import WebSocketWSGI
from eventlet.websocket import FailedConnectionError, RFC6455WebSocket

# RFC 6455: "Message Too Big".
MESSAGE_TOO_BIG = 1009


def unmask(data: bytes, mask: Sequence[int], length: int | None = None, offset: int = 0) -> bytes:
    """``data`` XOR the 4-byte ``mask``, starting ``offset`` bytes into the frame."""
    size = len(data) if length is None else length
    shift = offset % 4
    key = bytes(mask[shift:] + mask[:shift]) if shift else bytes(mask)
    repeated = (key * (size // 4 + 1))[:size]
    mixed = int.from_bytes(data[:size], "little") ^ int.from_bytes(repeated, "little")
    return mixed.to_bytes(size, "little")


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
        if type(ws) is not RFC6455WebSocket:  # switched, a subclass would lose its own code
            raise TypeError(
                f"eventlet's _handle_hybi_request made a {type(ws).__qualname__}, not the "
                "RFC6455WebSocket the guard's limits are made for (whitelist.E112)"
            )
        # eventlet builds the connection itself: it becomes the guarded kind here. Its
        # limits are plain attributes, not closures over it (a closure held by the
        # connection made a reference cycle, which left the connection, its Engine.IO
        # session and their queues, 22 objects, to the cyclic garbage collector).
        ws.__class__ = GuardedRFC6455WebSocket
        ws.max_frame_length = self.max_frame_length  # eventlet refuses a longer frame unread
        ws.eio_sid = self.eio_sid
        ws.preconnect_limit = self.preconnect_limit
        return ws


class GuardedRFC6455WebSocket(RFC6455WebSocket):
    """eventlet's RFC 6455 connection, unmasked in one XOR, with a cap on each message."""

    _apply_mask = staticmethod(unmask)
    # Set on each connection by GuardedWebSocketWSGI._handle_hybi_request.
    eio_sid: str
    preconnect_limit: Callable[[str], int | None]

    def _recv_frame(self, message: Any = None) -> Any:
        message = super()._recv_frame(message=message)
        # The budget as it stands once the frame is in: a connect sent over polling
        # may have been welcomed while this connection waited (an upgrade).
        limit = self.max_frame_length
        budget = self.preconnect_limit(self.eio_sid)
        if budget is not None and budget < limit:
            limit = budget
        if not message.opcode & 8 and sum(map(len, message.data)) > limit:
            raise FailedConnectionError(
                MESSAGE_TOO_BIG, f"Message above the limit of {limit} bytes."
            )
        return message
