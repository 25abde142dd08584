"""A refused origin's WebSocket handshake, answered without an Engine.IO session.

A client whose origin the rules refuse gets no session, yet python-engineio
opened it one all the same until its connect was refused: a ``Socket`` with
its queue, writer green thread and ping timer, python-socketio's and the
guard's state, only to answer one connect and close. A refusal cost nearly
what an admission does (callgrind: 2.11 M instructions against 2.42 M).
``RefusedWebSocket`` answers such a handshake in the request's own green
thread instead, with only the Engine.IO a refused client needs:

* the OPEN packet, with the settings python-engineio sends (contract
  ``whitelist.E116`` compares the two at start-up) and a session id that names
  no session: a request that uses it is answered "Invalid session";
* each Socket.IO connect answered with what ``GuardHost.refusal_for`` gives:
  its ``connect_error``, reported and paced as every refusal is;
* a close ``REFUSAL_GRACE_SECONDS`` after the first refusal, or
  ``REFUSED_CONNECT_SECONDS`` after the handshake if no connect came, or at
  the client's close or a message that is not a packet; other messages are
  dropped, as python-socketio drops the events of a socket not connected.

A connect the rules allow by then (a rule added since the handshake) is not
refused: the connection closes, and the client's reconnect gets a session.
Green modes only, where a wait can end at a deadline in the request's own green
thread; under threading the refusal goes through python-engineio as before.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from engineio import packet as eio_packet
from socketio import packet as sio_packet

from whitelist.conf import conf
from whitelist.engine.host import GuardHost
from whitelist.engine.sessions import REFUSAL_GRACE_SECONDS, REFUSED_CONNECT_SECONDS

logger = logging.getLogger(__name__)

GREEN_MODES = ("eventlet", "gevent")
_CLOSE = eio_packet.Packet(eio_packet.CLOSE).encode()
_TIMED_OUT = object()


def answers(eio: Any, environ: Mapping[str, Any], fields: Mapping[str, list[str]]) -> bool:
    """Is this a new session over WebSocket that python-engineio would accept, in a green mode?

    The same tests python-engineio makes before it opens a session (protocol 4,
    no ``sid``, the ``websocket`` transport enabled and named by the query and
    the ``Upgrade`` header); anything else goes to python-engineio to answer.
    """
    return (
        eio.async_mode in GREEN_MODES
        and environ.get("REQUEST_METHOD") == "GET"
        and "sid" not in fields
        and "j" not in fields
        and fields.get("EIO") == ["4"]
        and fields.get("transport", ("polling",))[0] == "websocket"
        and str(environ.get("HTTP_UPGRADE", "")).lower() == "websocket"
        and "websocket" in eio.transports
    )


def open_packet(eio: Any, sid: str, upgrades: list[str]) -> eio_packet.Packet:
    """The OPEN packet python-engineio sends a new session (``Server._handle_connect``)."""
    return eio_packet.Packet(
        eio_packet.OPEN,
        {
            "sid": sid,
            "upgrades": upgrades,
            "pingTimeout": int(eio.ping_timeout * 1000),
            "pingInterval": int(eio.ping_interval + eio.ping_interval_grace_period) * 1000,
            "maxPayload": eio.max_http_buffer_size,
        },
    )


def serve(host: GuardHost, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """Answer this WebSocket handshake as ``RefusedWebSocket``, with the server's WebSocket class.

    The class python-engineio would use, with the guard's limits
    (``websockets.use_guarded_websockets``): the upgrade is checked and answered
    the same way, and each message held to the pre-connect budget.
    """
    websocket_class = host.eio._async["websocket"]
    return websocket_class(RefusedWebSocket(host, environ), host.eio)(environ, start_response)


class RefusedWebSocket:
    """The WebSocket handler of one refused origin's connection (see the module's docstring)."""

    def __init__(self, host: GuardHost, environ: Mapping[str, Any]) -> None:
        self.host = host
        self.environ = environ

    def __call__(self, ws: Any) -> list[Any]:
        """Answer the connection; an empty body, as python-engineio's handler returns."""
        self.converse(ws)
        return []

    def converse(self, ws: Any) -> None:
        eio = self.host.eio
        timeout = _timeout_class(eio.async_mode)
        deadline = time.monotonic() + min(conf.WHITELIST_CONNECT_TIMEOUT, REFUSED_CONNECT_SECONDS)
        refused = False
        try:
            ws.send(open_packet(eio, eio.generate_id(), []).encode())
            while (left := deadline - time.monotonic()) > 0:
                message = _TIMED_OUT
                with timeout(left, False):
                    message = ws.wait()
                if message is None:
                    return  # the client closed, or sent what is no Engine.IO packet
                answer = None if message is _TIMED_OUT else self.answer(message)
                if answer is None:
                    break
                for part in answer:
                    ws.send(part)
                if answer and not refused:
                    refused = True
                    deadline = min(deadline, time.monotonic() + REFUSAL_GRACE_SECONDS)
            ws.send(_CLOSE)  # as python-engineio ends a session: Engine.IO's CLOSE first
        except OSError:
            return  # the client went away while it was answered
        finally:
            with contextlib.suppress(OSError):
                ws.close()

    def answer(self, message: str | bytes) -> list[str | bytes] | None:
        """The messages that answer ``message`` (none for most); None to close the connection."""
        try:
            engine_packet = eio_packet.Packet(encoded_packet=message)
        except Exception:  # the WebSocket's own check ends the connection first
            return None
        if engine_packet.packet_type == eio_packet.CLOSE:
            return None
        if engine_packet.packet_type != eio_packet.MESSAGE:
            return []
        try:
            socket_packet = self.host.packet_class(encoded_packet=engine_packet.data)
        except Exception:  # python-socketio closes such a session too (whitelist.E113)
            logger.debug("Closing a refused origin's WebSocket: an undecodable packet")
            return None
        if socket_packet.packet_type != sio_packet.CONNECT:
            return []
        refusal = self.host.refusal_for(self.environ, socket_packet.namespace or "/")
        if refusal is None:
            logger.debug("A connect of a refused handshake is allowed now: closing for a retry")
            return None
        return [eio_packet.Packet(eio_packet.MESSAGE, data=part).encode() for part in refusal]


def _timeout_class(async_mode: str) -> Any:
    """The green mode's ``Timeout``: ``Timeout(seconds, False)`` ends a block quietly."""
    if async_mode == "gevent":
        import gevent

        return gevent.Timeout
    import eventlet

    return eventlet.Timeout
