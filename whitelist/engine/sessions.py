"""Engine.IO sessions that end on time, without holding a thread to do it.

python-engineio's ``Server.disconnect(sid)`` closes a session and then waits
until the client has fetched what is queued for it. A long-polling client that
never polls again (it posted a bad packet and hung up) kept that request's
thread and socket for good: 200 such requests left 206 green threads and 208
descriptors. ``SessionLifecycle`` replaces that wait:

* ``close()`` never waits. A WebSocket session closes at once (its writer still
  sends what is queued, then Engine.IO's CLOSE); a polling session is told
  CLOSE and is closed as soon as a poll has fetched its queue, or after
  ``CLOSE_GRACE_SECONDS`` if none comes.
* A session whose connect the guard refused is closed ``REFUSAL_GRACE_SECONDS``
  after the refusal (``connect_error``) is queued: refused clients keep no
  session. The grace lets the refusal reach the client before the close:
  python-socketio's client handles the two out of order when they come together,
  and then raises a bare "Connection error" instead of the polite refusal.
  Socket.IO clients close their session themselves after a refusal anyway.
* A session with no welcomed socket after ``WHITELIST_CONNECT_TIMEOUT``
  seconds is closed (Node socket.io's ``connectTimeout``); one opened from an
  origin the rules refuse gets ``REFUSED_CONNECT_SECONDS``, enough to send its
  connect and read the refusal. The clock stops while a connect is being
  handled (a slow connect handler is not the client's fault) and starts again
  if it ended without a welcome.

Deadlines are kept in insertion order, so each sweep costs only the sessions
that expire. Everything else the guard keeps about a session is one
``EngineSession``, created when python-engineio opens it and dropped when it
closes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from whitelist.conf import conf
from whitelist.engine import sockets

logger = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 2.0
REFUSAL_GRACE_SECONDS = 1.0
REFUSED_CONNECT_SECONDS = 3.0
SWEEP_SECONDS = 0.5


@dataclass(slots=True)
class EngineSession:
    """What the guard keeps about one open Engine.IO session."""

    # The origin of its handshake: every later request must name the same one.
    origin: str | None
    # Bytes of binary attachments received for the packet being assembled.
    pending_binary_bytes: int = 0
    # python-engineio's ping task, killed when the session closes (eventlet).
    ping_timer: Any = None
    # A socket of it was welcomed: no connect deadline, no pre-connect budget.
    joined: bool = False
    # The guard refused the connect being handled: the session closes after a grace.
    refused_by_guard: bool = False
    # Sockets the guard admitted, by namespace, until python-socketio acknowledges them.
    unwelcomed: dict[str, Any] = field(default_factory=dict)


class EngineSessions:
    """One Engine.IO server's sessions: their state, their deadlines, a close that never blocks."""

    def __init__(self, eio: Any) -> None:
        self.eio = eio
        self._states: dict[str, EngineSession] = {}
        self._lock = threading.Lock()
        # Sessions without a welcomed socket yet, by the time they must have one; one
        # dict per timeout, so that each stays in deadline order.
        self._unjoined: dict[str, float] = {}
        self._unjoined_refused: dict[str, float] = {}
        # Sessions whose connect the guard refused, closed at this time.
        self._refused: dict[str, float] = {}
        # Polling sessions told CLOSE, closed after their next poll or at this time.
        self._closing: dict[str, float] = {}

    def __len__(self) -> int:
        """The sessions open now, as the guard knows them."""
        return len(self._states)

    def pending_deadlines(self) -> int:
        """Deadlines not reached yet (connects, refusals, closes)."""
        return sum(map(len, (self._unjoined, self._unjoined_refused, self._refused, self._closing)))

    def get(self, sid: str | None) -> EngineSession | None:
        """The session's state, or None when it is closed or was never opened here."""
        return self._states.get(sid)  # type: ignore[arg-type]

    def opened(self, sid: str, origin: str | None, *, allowed: bool) -> EngineSession:
        """python-engineio accepted a new session: it must have a welcomed socket in time."""
        state = self._states[sid] = EngineSession(origin)
        self._start_connect_clock(sid, allowed=allowed)
        return state

    def _start_connect_clock(self, sid: str, *, allowed: bool) -> None:
        seconds = conf.WHITELIST_CONNECT_TIMEOUT
        deadlines = self._unjoined
        if not allowed:
            seconds = min(seconds, REFUSED_CONNECT_SECONDS)
            deadlines = self._unjoined_refused
        with self._lock:
            deadlines[sid] = time.monotonic() + seconds

    def connecting(self, sid: str) -> None:
        """A connect of this session is being handled: its clock stops."""
        with self._lock:
            self._unjoined.pop(sid, None)
            self._unjoined_refused.pop(sid, None)

    def connect_handled(self, sid: str) -> None:
        """The connect is answered: if nothing was welcomed or refused, the clock restarts."""
        state = self._states.get(sid)
        if state is None or state.joined:
            return
        with self._lock:
            if sid in self._refused or sid in self._closing:
                return
        if sockets.engineio_socket(self.eio, sid) is not None:
            self._start_connect_clock(sid, allowed=True)

    def joined(self, sid: str) -> None:
        """A socket of this session was welcomed: no connect deadline any more."""
        state = self._states.get(sid)
        if state is not None:
            state.joined = True
        with self._lock:
            self._unjoined.pop(sid, None)
            self._unjoined_refused.pop(sid, None)
            self._refused.pop(sid, None)

    def refused(self, sid: str) -> None:
        """The guard refused this session's connect: close it after the refusal's grace."""
        with self._lock:
            self._unjoined.pop(sid, None)
            self._unjoined_refused.pop(sid, None)
            self._refused[sid] = time.monotonic() + REFUSAL_GRACE_SECONDS

    def has_joined(self, sid: str) -> bool:
        """Has a socket of this session been welcomed?"""
        state = self._states.get(sid)
        return state is not None and state.joined

    def ended(self, sid: str) -> EngineSession | None:
        """python-engineio closed the session: forget it; its last state, if it had one."""
        with self._lock:
            self._unjoined.pop(sid, None)
            self._unjoined_refused.pop(sid, None)
            self._refused.pop(sid, None)
            self._closing.pop(sid, None)
        return self._states.pop(sid, None)

    def close(self, sid: str) -> None:
        """End a session without waiting for its client; what is queued is still sent."""
        socket = sockets.engineio_socket(self.eio, sid)
        if socket is None:
            return
        if sockets.is_websocket(socket):
            sockets.close_engineio_session(self.eio, sid, abort=False)
            return
        with self._lock:
            if sid in self._closing:
                return
            self._closing[sid] = time.monotonic() + CLOSE_GRACE_SECONDS
        sockets.tell_engineio_close(socket)

    def disconnect(self, sid: str | None = None) -> None:
        """``engineio.Server.disconnect``, without its wait for the client."""
        if sid is not None:
            self.close(sid)
            return
        for each in sockets.session_ids(self.eio):
            sockets.close_engineio_session(self.eio, each, abort=False)

    def polled(self, sid: str) -> None:
        """A poll of ``sid`` returned: close it if it was closing and has nothing left to send."""
        if sid not in self._closing:
            return
        socket = sockets.engineio_socket(self.eio, sid)
        if socket is None or sockets.has_nothing_queued(socket):
            self._end(sid)

    def sweep(self, now: float | None = None) -> int:
        """Close every session past its deadline; the number closed."""
        now = time.monotonic() if now is None else now
        expired_connects = [
            *_pop_expired(self._unjoined, now, self._lock),
            *_pop_expired(self._unjoined_refused, now, self._lock),
        ]
        expired_refusals = _pop_expired(self._refused, now, self._lock)
        expired_closes = _pop_expired(self._closing, now, self._lock)
        for sid in expired_connects:
            logger.debug("Closing Engine.IO session %s: no socket connected in time", sid)
        for sid, end in [
            *((sid, self.close) for sid in expired_connects + expired_refusals),
            *((sid, self._end) for sid in expired_closes),
        ]:
            try:
                end(sid)
            except Exception:  # closed meanwhile by python-engineio: the others still go
                logger.debug("Could not close Engine.IO session %s", sid, exc_info=True)
        return len(expired_connects) + len(expired_refusals) + len(expired_closes)

    def _end(self, sid: str) -> None:
        with self._lock:
            self._closing.pop(sid, None)
        # The client was already told CLOSE (or never polls again): do not queue another.
        sockets.close_engineio_session(self.eio, sid, abort=True)


def _pop_expired(deadlines: dict[str, float], now: float, lock: threading.Lock) -> list[str]:
    """Remove and return the sessions whose deadline has passed (the oldest come first)."""
    expired = []
    with lock:
        for sid, deadline in deadlines.items():
            if deadline > now:
                break
            expired.append(sid)
        for sid in expired:
            del deadlines[sid]
    return expired
