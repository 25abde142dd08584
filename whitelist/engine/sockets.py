"""python-engineio's sessions as the guard reads and closes them (its ``Socket`` objects).

python-engineio has no public API to list, inspect or close a session without
waiting for its client; these helpers are the only code that reads
``Server.sockets`` and ``Socket`` state (contract ``whitelist.E108``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from engineio import packet as eio_packet
from engineio.socket import Socket

logger = logging.getLogger(__name__)


def has_session(eio: Any, sid: str | None) -> bool:
    """Does python-engineio list this session (open, or closed and not yet forgotten)?"""
    return sid in eio.sockets


def session_count(eio: Any) -> int:
    """The Engine.IO sessions python-engineio lists now."""
    return len(eio.sockets)


def session_ids(eio: Any) -> list[str]:
    """The sids of the sessions python-engineio lists now."""
    return list(eio.sockets)


def max_payload_bytes(eio: Any) -> int:
    """python-engineio's ``max_http_buffer_size``: the largest POST body or message."""
    return int(eio.max_http_buffer_size)


def engineio_socket(eio: Any, sid: str) -> Any:
    """The session's ``engineio.socket.Socket``, or None when it is closed or gone."""
    socket = eio.sockets.get(sid)
    if socket is None or socket.closed or socket.closing:
        return None
    return socket


def forget_if_closed(eio: Any, sid: str) -> bool:
    """Drop a session python-engineio closed but still lists; True if it did.

    Its GET path answers such a session 400, but its POST path raises
    KeyError('Session is disconnected') from ``_get_socket``: an HTTP 500.
    """
    socket = eio.sockets.get(sid)
    if socket is None or not socket.closed:
        return False
    eio.sockets.pop(sid, None)
    return True


def is_websocket(socket: Any) -> bool:
    """Does the session run on a WebSocket (whose writer drains the queue by itself)?"""
    return bool(socket.upgraded)


def has_nothing_queued(socket: Any) -> bool:
    """Has a poll fetched everything queued for the client?"""
    return bool(socket.queue.empty())


def tell_engineio_close(socket: Any) -> None:
    """Queue Engine.IO's CLOSE packet, which the client's next poll fetches."""
    socket.send(eio_packet.Packet(eio_packet.CLOSE))


def close_engineio_session(eio: Any, sid: str, *, abort: bool) -> None:
    """Close a session now, as ``Server.disconnect`` does, but never wait for the client.

    ``Socket.close(wait=True)``, which ``Server.disconnect`` uses, blocks until a
    poll has fetched the queue. ``abort`` skips queueing another CLOSE packet.
    """
    socket = eio.sockets.get(sid)
    if socket is not None:
        try:
            socket.close(wait=False, abort=abort, reason=eio.reason.SERVER_DISCONNECT)
        except Exception:  # a disconnect handler failed: the session is closed all the same
            logger.exception("Closing Engine.IO session %s failed", sid)
    eio.sockets.pop(sid, None)


def owning_socket(method: Any) -> Socket | None:
    """The ``Socket`` a bound method belongs to, through any ``functools.partial`` around it.

    python-engineio passes bound ``Socket`` methods (the WebSocket handler, the
    ping timer); python-socketio's admin UI swaps them for ``partialmethod``s.
    """
    while isinstance(method, functools.partial):
        method = method.func
    owner = getattr(method, "__self__", None)
    return owner if isinstance(owner, Socket) else None
