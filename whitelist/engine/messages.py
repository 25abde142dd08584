"""Every Socket.IO message, seen before python-socketio dispatches it and right after.

python-socketio registers one Engine.IO ``message`` handler and offers no hook
around it; ``hook_messages`` wraps it (contract ``whitelist.E101``), which is
the only place where the guard can:

* drop client events named ``connect`` or ``disconnect``, which python-socketio
  dispatches to those handlers in a thread of their own, where they could race
  a real disconnect; and events of a socket that is not welcomed yet (before
  5.18 python-socketio dispatches them while the connect handler still decides);
* welcome a socket right after python-socketio acknowledged its connect, which
  happens inside this call, whatever else the session sends meanwhile;
* answer the connect of a session whose origin the rules refused at its
  handshake with the guard's ``connect_error`` itself (``refuse_connect``):
  python-socketio's allotting a socket id, calling the guard, catching its
  refusal and taking the id back made a refusal cost nearly what an admission did;
* cap binary attachments (``WHITELIST_MAX_ATTACHMENTS``,
  ``WHITELIST_MAX_BINARY_BYTES`` per packet, ``WHITELIST_MAX_PENDING_BINARY_BYTES``
  for all the server's sessions), reading python-socketio's pending binary
  packets (``whitelist.E104``);
* close a session whose message python-socketio cannot decode, instead of the
  18-line traceback per message python-engineio logs while keeping the session.
"""

from __future__ import annotations

import logging
from typing import Any

from socketio import packet

from whitelist.conf import conf
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine import sockets
from whitelist.engine.decoded_once import DecodedOnce
from whitelist.engine.host import GuardHost
from whitelist.engine.locks import bookkeeping_lock
from whitelist.engine.sessions import EngineSession

logger = logging.getLogger(__name__)
malformed_log = RateLimitedLog(logger)
stateless_log = RateLimitedLog(logger)

# The first character of a packet in python-socketio's default (text) encoding.
_TEXT_TYPES = {
    str(packet.CONNECT),
    str(packet.EVENT),
    str(packet.BINARY_EVENT),
    str(packet.BINARY_ACK),
}
_BINARY_TYPES = {packet.BINARY_EVENT, packet.BINARY_ACK}
_EVENT_TYPES = {packet.EVENT, packet.BINARY_EVENT}
# Event names only python-socketio itself may trigger; a client sending one is dropped.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "__disconnect_final"})
# What python-socketio raises for a message it cannot decode or did not expect (an
# unknown type, binary data with no binary packet announced, a CONNECT_ERROR, JSON
# nested deeper than Python's recursion limit).
MALFORMED = (ValueError, TypeError, IndexError, RecursionError)


def hook_messages(server: GuardHost) -> None:
    """Hold events until their socket is welcomed; welcome once python-socketio acknowledged."""
    handle_message = server.eio.handlers["message"]
    pending = PendingAttachments(server)
    once = DecodedOnce(server)

    def handle_message_guarded(eio_sid: str, data: Any) -> Any:
        state = server.sessions.get(eio_sid)
        if state is None:
            _drop_stateless(server, eio_sid)
            return None
        # While a binary packet waits for attachments, python-socketio takes every
        # message, text or bytes, as the next attachment: never as a packet.
        attachment = eio_sid in server._binary_packet
        if not attachment:  # none pending (python-socketio drops it at a namespace's disconnect)
            pending.forget(eio_sid, state)
        decoded = None if attachment else _decode(once.decoder(server), data)
        excess = _too_much_binary(state, data, decoded, attachment=attachment)
        if excess is None and attachment:
            excess = pending.add(eio_sid, state, len(data))
        if excess is not None:
            pending.forget(eio_sid, state)
            server._binary_packet.pop(eio_sid, None)
            close_malformed(server, eio_sid, ValueError(excess))
            return None
        connect = decoded is not None and decoded.packet_type == packet.CONNECT
        if connect:
            server.sessions.connecting(eio_sid)  # the clock stops, a refusal's wait included
            if state.origin_refused and server.refuse_connect(eio_sid, decoded.namespace or "/"):
                return None  # answered with its connect_error; python-socketio never saw it
        event = decoded is not None and decoded.packet_type in _EVENT_TYPES
        if event:
            namespace = decoded.namespace or "/"
            if not _admissible_event(server, eio_sid, namespace, decoded.data):
                logger.debug("Dropped an event for %s on %s", eio_sid, namespace)
                return None
            once.hand_over(server, data, decoded)
        try:
            return handle_message(eio_sid, data)
        except MALFORMED as error:  # python-socketio could not make a packet of it
            close_malformed(server, eio_sid, error)
            return None
        finally:
            if event:
                once.take_back(server)
            if attachment and eio_sid not in server._binary_packet:  # the packet is complete
                pending.forget(eio_sid, state)
            if connect:
                server.welcome(eio_sid, decoded.namespace or "/")
                server.end_refused_session(eio_sid)
                server.sessions.connect_handled(eio_sid)

    server.eio.on("message", handle_message_guarded)


def _drop_stateless(server: GuardHost, eio_sid: str) -> None:
    """A message for a session the guard keeps no state for is dropped; said loudly if it is open.

    Usually the session closed while this message waited for its thread (a
    payload of a connect and a close). An open one was never seen opening: the
    session hooks were displaced (``sio.eio.on("connect", ...)``, the admin UI
    built without ``GuardedServer.instrument()``), and every client would hang.
    """
    if sockets.engineio_socket(server.eio, eio_sid) is None:
        logger.debug("Dropped a message for closed session %s", eio_sid)
        return
    stateless_log.log(
        "messages of sessions the guard never saw open",
        logging.ERROR,
        "Dropped a message of Engine.IO session %s, which the guard never saw open: "
        "something replaced the Engine.IO connect handler GuardedServer installed "
        "(use GuardedServer.instrument() for the admin UI)",
        eio_sid,
    )


def _too_much_binary(
    state: EngineSession, data: Any, decoded: Any, *, attachment: bool
) -> str | None:
    """Why a binary packet or one of its attachments exceeds the per-packet caps, or None."""
    if attachment:
        if state.pending_binary_bytes + len(data) > conf.WHITELIST_MAX_BINARY_BYTES:
            return f"more than {conf.WHITELIST_MAX_BINARY_BYTES} bytes of attachments"
        return None
    if (
        decoded is not None
        and decoded.packet_type in _BINARY_TYPES
        and decoded.attachment_count > conf.WHITELIST_MAX_ATTACHMENTS
    ):
        return f"{decoded.attachment_count} binary attachments announced"
    return None


class PendingAttachments:
    """The bytes of attachments one server holds for unfinished binary packets, in all.

    Each session may hold ``WHITELIST_MAX_BINARY_BYTES``; without a sum, twenty
    sessions just under it grew the server by 185 MiB. Each session's share is
    kept here by session id (and mirrored in its
    ``EngineSession.pending_binary_bytes`` for the per-session cap) until its
    packet is complete or refused: releasing a share pops it, so no share is
    subtracted twice. When the sum reaches the budget, the shares of closed
    sessions, and of those python-socketio no longer holds a packet for
    (disconnected, or complete a moment ago), are dropped first.
    """

    def __init__(self, server: GuardHost) -> None:
        self.server = server
        self.held = 0
        self._shares: dict[str, int] = {}
        self._lock = bookkeeping_lock()  # sessions' messages run in threads of their own

    def add(self, eio_sid: str, state: EngineSession, size: int) -> str | None:
        """Count an attachment of ``size`` bytes; why the server cannot hold it, or None."""
        budget = conf.WHITELIST_MAX_PENDING_BINARY_BYTES
        with self._lock:
            if self.held + size > budget:
                self._recount()
            if self.held + size > budget:
                return f"the server holds {budget} bytes of attachments already"
            self._shares[eio_sid] = self._shares.get(eio_sid, 0) + size
            state.pending_binary_bytes = self._shares[eio_sid]
            self.held += size
        return None

    def forget(self, eio_sid: str, state: EngineSession) -> None:
        """The session's packet is complete, or refused: its attachments are no longer held."""
        with self._lock:
            self.held -= self._shares.pop(eio_sid, 0)
            state.pending_binary_bytes = 0

    def _recount(self) -> None:
        """Drop the shares of closed sessions and of those python-socketio holds no packet
        for (under the lock); python-socketio 5.14 keeps a closed session's packet."""
        assembling, sessions = self.server._binary_packet, self.server.sessions
        for eio_sid in [sid for sid in self._shares if sid not in assembling]:
            del self._shares[eio_sid]
        for eio_sid in [sid for sid in self._shares if sessions.get(sid) is None]:
            del self._shares[eio_sid]
        self.held = sum(self._shares.values())


def close_malformed(server: GuardHost, eio_sid: str, error: Exception) -> None:
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
        server.sessions.close(eio_sid)
    except Exception:
        logger.debug("Could not close session %s", eio_sid, exc_info=True)


def _decode(packet_class: type, data: Any) -> Any:
    """The packet as python-socketio will decode it, if it is a connect or an event.

    With the default serializer only text messages of those types are decoded
    (binary attachments are not packets); other serializers (msgpack) are
    decoded whole. None when it is not one of those, or does not decode.
    """
    if packet_class is packet.Packet and not (isinstance(data, str) and data[:1] in _TEXT_TYPES):
        return None
    try:
        return packet_class(encoded_packet=data)
    except Exception:  # python-socketio refuses it the same way right after
        return None


def _admissible_event(server: GuardHost, eio_sid: str, namespace: str, data: Any) -> bool:
    # An event is a list whose first item, its name, is a string (socket.io drops anything
    # else): python-socketio would look a JSON object up as a name and fail in its thread.
    if not (isinstance(data, list) and data and isinstance(data[0], str)):
        return False
    if data[0] in RESERVED_EVENTS:
        return False
    sid = server.manager.sid_from_eio_sid(eio_sid, namespace)
    return server.is_welcomed(eio_sid, namespace, sid)
