"""The places where the guard reaches past python-socketio's public API.

Checked against python-socketio 5.14.0 to 5.18.1 with python-engineio 4.13.2 to
4.15.1 (``whitelist.engine.versions.TESTED``); ``make test`` runs the guard's tests on
both ends of those ranges.

* ``hook_engineio_messages`` wraps the handler python-socketio registers with
  ``eio.on("message")``: the only place that sees a client message before
  python-socketio dispatches it, and right after it has answered it.
* ``guard_before_instrumentation`` puts the guard in front of the private
  ``_trigger_event`` that ``Server.instrument()`` (the admin UI) replaces.
* ``initialize_manager`` starts the client manager as python-socketio would at
  the first Engine.IO connect (``manager_initialized``, then ``initialize()``).
* ``quiet_closed_session_race`` wraps python-engineio's ``_log_error_once``.
* ``hook_engineio_sessions`` wraps the handlers python-socketio registers with
  ``eio.on("connect")`` and ``eio.on("disconnect")``, to remember which origin
  opened each Engine.IO session (``GuardedServer.handle_request`` checks it) and
  to give it a deadline (``whitelist.engine.sessions``); it replaces the server's
  ``disconnect()`` with one that never waits for the client.
* ``end_ping_timers_with_their_sessions`` wraps the server's
  ``start_background_task`` to know each session's ping timer
  (``Socket._send_ping``) and kills it when the session closes (eventlet).
* ``use_guarded_websockets`` wraps the websocket class in the server's own copy
  of python-engineio's driver table (``eio._async``), which python-engineio
  calls with the bound ``Socket._websocket_handler`` (``__self__.sid``).
* ``whitelist.engine.sessions`` closes sessions through python-engineio's ``Socket``
  objects (``eio.sockets``, ``Socket.close(wait=False)``, its queue): the helpers
  at the end of this module.
* ``hook_engineio_messages`` also closes a session whose message python-socketio
  cannot decode, instead of letting python-engineio log a traceback per message,
  and one whose binary packet exceeds ``WHITELIST_MAX_ATTACHMENTS`` or
  ``WHITELIST_MAX_BINARY_BYTES`` (it reads python-socketio's ``_binary_packet``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import socketio
from socketio import packet

from whitelist.conf import conf
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.rules.decision import decide, request_origin
from whitelist.server.calls import connect_call

if TYPE_CHECKING:
    from whitelist.server.guarded import GuardedServer

logger = logging.getLogger(__name__)

# The first character of a packet in python-socketio's default (text) encoding.
_TEXT_TYPES = {
    str(packet.CONNECT),
    str(packet.EVENT),
    str(packet.BINARY_EVENT),
    str(packet.BINARY_ACK),
}
_BINARY_TYPES = {packet.BINARY_EVENT, packet.BINARY_ACK}
_EVENT_TYPES = {packet.EVENT, packet.BINARY_EVENT}


def hook_engineio_messages(server: GuardedServer) -> None:
    """Hold events until their socket is welcomed; welcome once python-socketio acknowledged.

    * python-socketio dispatches a client's event named ``connect`` or
      ``disconnect`` to those handlers, in a thread of its own, where it could
      race a real disconnect; and before 5.18 it dispatches events of a socket
      whose connect handler is still deciding (the manager already counts it as
      connected). Such events are dropped here.
    * python-socketio acknowledges a connect (the CONNECT packet) after the
      connect handler returns, and offers no hook for "after". The message that
      carried the connect is handled in this call, so the welcome follows it
      here, whatever else the session sends meanwhile.
    """
    handle_message = server.eio.handlers["message"]

    # Bytes of binary attachments received so far, per session (dropped when it closes).
    pending_bytes = server.pending_binary_bytes

    def too_much_binary(eio_sid: str, data: Any, decoded: Any) -> str | None:
        """Why a binary packet or attachment exceeds the caps, or None (private: _binary_packet)."""
        if decoded is not None and decoded.packet_type in _BINARY_TYPES:
            pending_bytes[eio_sid] = 0
            if decoded.attachment_count > conf.WHITELIST_MAX_ATTACHMENTS:
                return f"{decoded.attachment_count} binary attachments announced"
        elif isinstance(data, bytes) and eio_sid in server._binary_packet:
            pending_bytes[eio_sid] = pending_bytes.get(eio_sid, 0) + len(data)
            if pending_bytes[eio_sid] > conf.WHITELIST_MAX_BINARY_BYTES:
                return f"more than {conf.WHITELIST_MAX_BINARY_BYTES} bytes of attachments"
        return None

    def handle_message_guarded(eio_sid: str, data: Any) -> Any:
        if eio_sid not in server.environ:
            # The session closed while this message waited for its thread (a payload
            # of a connect and a close): python-socketio would fail on its environ.
            logger.debug("Dropped a message for closed session %s", eio_sid)
            return None
        decoded = _decode(server, data)
        excess = too_much_binary(eio_sid, data, decoded)
        if excess is not None:
            pending_bytes.pop(eio_sid, None)
            server._binary_packet.pop(eio_sid, None)
            close_malformed(server, eio_sid, ValueError(excess))
            return None
        if eio_sid not in server._binary_packet:
            pending_bytes.pop(eio_sid, None)
        connect = decoded is not None and decoded.packet_type == packet.CONNECT
        if connect:
            server.sessions.connecting(eio_sid)
        if decoded is not None and decoded.packet_type in _EVENT_TYPES:
            namespace = decoded.namespace or "/"
            if not _admissible_event(server, eio_sid, namespace, decoded.data):
                logger.debug("Dropped an event for %s on %s", eio_sid, namespace)
                return None
        try:
            return handle_message(eio_sid, data)
        except MALFORMED as error:  # python-socketio could not make a packet of it
            close_malformed(server, eio_sid, error)
            return None
        finally:
            if connect:
                server.welcome(eio_sid, decoded.namespace or "/")
                server.end_refused_session(eio_sid)
                server.sessions.connect_handled(eio_sid)

    server.eio.on("message", handle_message_guarded)


# What python-socketio raises for a message it cannot decode or did not expect (an
# unknown type, binary data with no binary packet announced, a CONNECT_ERROR, JSON
# nested deeper than Python's recursion limit).
MALFORMED = (ValueError, TypeError, IndexError, RecursionError)
malformed_log = RateLimitedLog(logger)


def close_malformed(server: GuardedServer, eio_sid: str, error: Exception) -> None:
    """Close the Engine.IO session that sent a broken packet; log it at a bounded rate.

    python-socketio lets the error reach python-engineio, which logs an
    18-line traceback per message and keeps the session: 200 binary frames of
    39 bytes from a refused page wrote 3,600 lines.
    """
    malformed_log.log(
        "malformed packets",
        logging.WARNING,
        "Closing Engine.IO session %s: it sent a packet that is not Socket.IO (%s)",
        eio_sid,
        error,
    )
    try:
        server.eio.disconnect(eio_sid)
    except Exception:
        logger.debug("Could not close session %s", eio_sid, exc_info=True)


def _decode(server: GuardedServer, data: Any) -> Any:
    """The packet as python-socketio will decode it, if it is a connect or an event.

    With the default serializer only text messages of those types are decoded
    (binary attachments are not packets); other serializers (msgpack) are
    decoded whole. None when it is not one of those, or does not decode.
    """
    if server.packet_class is packet.Packet and not (
        isinstance(data, str) and data[:1] in _TEXT_TYPES
    ):
        return None
    try:
        return server.packet_class(encoded_packet=data)
    except Exception:  # python-socketio refuses it the same way right after
        return None


def _admissible_event(server: GuardedServer, eio_sid: str, namespace: str, data: Any) -> bool:
    if isinstance(data, list) and data and data[0] in server.reserved_events:
        return False
    sid = server.manager.sid_from_eio_sid(eio_sid, namespace)
    return server.is_welcomed(eio_sid, namespace, sid)


def guard_before_instrumentation(server: GuardedServer) -> None:
    """Tell the admin UI of a connect only once the guard and the handler admitted it.

    ``Server.instrument()`` replaces the private ``_trigger_event`` with one that
    reports every connect to the admin UI *before* calling the connect handler,
    and forgets a socket on any disconnect call (failing on a second one). Here
    the guard and the application's handler decide first, the handler is not
    run twice, and a disconnect is reported only for a socket that was.

    The admin UI's periodic socket list reads python-socketio's rooms, which
    also hold sockets whose connect is still being decided: one refused in that
    moment can show up there until the admin UI reloads.
    """
    report = server._trigger_event
    dispatch = functools.partial(socketio.Server._trigger_event, server)

    def trigger_event(event: str, namespace: str, *args: Any) -> Any:
        if event == "connect":
            if connect_call(server, namespace, args) is None:
                return False
            sid = args[0]
            outcome = dispatch(event, namespace, *args)  # raises or returns False to refuse
            if outcome is False:
                return False
            server.decided[(namespace, sid)] = outcome
            try:
                return report(event, namespace, *args)
            finally:
                server.decided.pop((namespace, sid), None)
        if event == "disconnect" and (not args or (namespace, args[0]) not in server.open_sockets):
            return dispatch(event, namespace, *args)  # never reported as connected
        return report(event, namespace, *args)

    server._trigger_event = trigger_event  # type: ignore[method-assign]


def initialize_manager(server: GuardedServer) -> None:
    """Initialise the client manager (a message queue's listener) before any client connects."""
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()


# python-engineio's words for a request that arrives just after its session closed.
CLOSED_SESSION_RACE = "'Session is disconnected'"


def quiet_closed_session_race(server: GuardedServer) -> None:
    """Log python-engineio's "'Session is disconnected' <sid>" at DEBUG, not ERROR.

    A refused page's socket.io-client closes its Engine.IO session right after
    its ``connect_error``, and a poll it already sent can arrive after the
    close: python-engineio answers 400 and logs it once at ERROR, under the
    same key as "Invalid session" (a session this process never had, as
    behind a load balancer without stickiness), which would then be logged at
    INFO only, below python-engineio's default level. The race is logged at
    DEBUG here and never spends that key.
    """
    eio = server.eio
    log_error_once = eio._log_error_once

    @functools.wraps(log_error_once)
    def log_unless_race(message: str, message_key: str) -> None:
        if message.startswith(CLOSED_SESSION_RACE):
            eio.logger.debug(message)
        else:
            log_error_once(message, message_key)

    eio._log_error_once = log_unless_race


def hook_engineio_sessions(server: GuardedServer) -> None:
    """Remember the origin that opened each Engine.IO session, until it closes."""
    on_connect = server.eio.handlers["connect"]
    on_disconnect = server.eio.handlers["disconnect"]

    def connect(eio_sid: str, environ: dict[str, Any], *args: Any) -> Any:
        server.session_origins[eio_sid] = request_origin(environ)
        accepted = on_connect(eio_sid, environ, *args)
        if accepted is False:
            server.session_origins.pop(eio_sid, None)
        else:
            server.sessions.opened(eio_sid, allowed=decide(environ, server.allowlist).allowed)
            server.start_session_sweeper()
        return accepted

    def disconnect(eio_sid: str, *args: Any) -> Any:
        try:
            return on_disconnect(eio_sid, *args)
        finally:
            server.session_origins.pop(eio_sid, None)
            server.pending_binary_bytes.pop(eio_sid, None)
            server.sessions.ended(eio_sid)
            stop_ping_timer(server, eio_sid)

    server.eio.on("connect", connect)
    server.eio.on("disconnect", disconnect)
    # Server.disconnect(sid) waits until the client has polled what is queued: one
    # that never polls again held the calling thread for good.
    server.eio.disconnect = server.sessions.disconnect


# -- Engine.IO sessions (whitelist.engine.sessions): python-engineio's Socket objects -------


def has_session(eio: Any, sid: str) -> bool:
    """Does python-engineio list this session (open, or closed and not yet forgotten)?"""
    return sid in eio.sockets


def session_count(eio: Any) -> int:
    """The Engine.IO sessions python-engineio lists now."""
    return len(eio.sockets)


def max_payload_bytes(eio: Any) -> int:
    """python-engineio's ``max_http_buffer_size``: the largest POST body or message."""
    return int(eio.max_http_buffer_size)


def registered_namespaces(server: Any) -> Collection[str]:
    """The namespaces with a handler on ``server`` (python-socketio's ``handlers`` table)."""
    return server.handlers.keys()


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
    from engineio import packet as eio_packet

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


def use_guarded_websockets(server: GuardedServer) -> None:
    """Serve this server's WebSockets through ``whitelist.engine.eventlet_websocket``.

    Every mode checks each message is an Engine.IO packet; eventlet's also gets
    ``GuardedWebSocketWSGI`` (unmasking, message cap, pre-connect budget).
    """
    from whitelist.engine.packets import PacketCheckingHandler

    websocket_class = server.eio._async["websocket"]
    if server.eio.async_mode == "eventlet":
        from whitelist.engine.eventlet_websocket import GuardedWebSocketWSGI

        websocket_class = functools.partial(
            GuardedWebSocketWSGI, preconnect_limit=server.preconnect_limit
        )

    def websocket(handler: Any, eio_server: Any) -> Any:
        return websocket_class(PacketCheckingHandler(handler), eio_server)

    # A copy: python-engineio's table is shared by every server in the process.
    server.eio._async = {**server.eio._async, "websocket": websocket}


def end_ping_timers_with_their_sessions(server: GuardedServer) -> None:
    """Stop a session's ping timer when the session closes (eventlet mode).

    python-engineio's timer (``Socket._send_ping``, started through the
    server's ``start_background_task``) sleeps the whole ping interval, 25 s,
    even once its session has closed, and keeps the session's objects alive
    meanwhile: 12,000 connects in 10 s left 12,000 sleeping green threads and
    130 MB until they woke. Timers are known by session and killed at its close.
    """
    from engineio.socket import Socket

    eio = server.eio
    start_background_task = eio.start_background_task
    timers = server.ping_timers

    def start_tracking_ping_timers(target: Any, *args: Any, **kwargs: Any) -> Any:
        task = start_background_task(target, *args, **kwargs)
        # The admin UI's development mode makes _send_ping a partialmethod, whose
        # partial carries the Socket as __self__ but no __func__.
        if isinstance(getattr(target, "__self__", None), Socket):
            timers[target.__self__.sid] = task
        return task

    eio.start_background_task = start_tracking_ping_timers


def stop_ping_timer(server: GuardedServer, eio_sid: str) -> None:
    """Kill the closed session's ping timer, if it is still asleep (eventlet only)."""
    task = server.ping_timers.pop(eio_sid, None)
    green = getattr(task, "g", None)
    if green is None or green.dead:
        return
    import eventlet

    if green is not eventlet.getcurrent():
        green.kill()
