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
  where it stopped if it ended without a welcome: a client that keeps sending
  connects (to a namespace that does not exist, say) never gets more time.

Deadlines are kept in a heap (``Deadlines``), so each sweep costs only the
sessions that expire, in deadline order however they were set; a refusal's
grace is never extended by another refusal. Everything else the guard keeps about a session is one
``EngineSession``, created when python-engineio opens it and dropped when it
closes.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from whitelist.conf import conf
from whitelist.engine import sockets
from whitelist.engine.locks import bookkeeping_lock

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
    # The handshake's WSGI environ (python-socketio keeps the same object for the session).
    environ: Mapping[str, Any] | None = None
    # The rules refused the handshake's origin: its connects are refused without python-socketio.
    origin_refused: bool = False
    # Bytes of binary attachments received for the packet being assembled.
    pending_binary_bytes: int = 0
    # python-engineio's ping task, killed when the session closes (eventlet).
    ping_timer: Any = None
    # Seconds left to get a socket welcomed (the connect clock stops while one is handled).
    connect_budget: float = 0.0
    # A socket of it was welcomed: no connect deadline, no pre-connect budget.
    joined: bool = False
    # The guard refused the connect being handled: the session closes after a grace.
    refused_by_guard: bool = False
    # Sockets the guard admitted, by namespace, until python-socketio acknowledges them.
    unwelcomed: dict[str, Any] = field(default_factory=dict)


class Deadlines:
    """Sessions with a deadline each, handed out in deadline order however they were set.

    A changed deadline is pushed anew; the old entry is skipped when it comes up.
    """

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, sid: object) -> bool:
        return sid in self._due

    def set(self, sid: str, when: float) -> None:
        self._due[sid] = when
        heapq.heappush(self._heap, (when, next(self._order), sid))

    def pop(self, sid: str) -> float | None:
        return self._due.pop(sid, None)

    def expired(self, now: float) -> list[str]:
        """Remove and return the sessions whose deadline has passed, the oldest first."""
        found = []
        while self._heap and self._heap[0][0] <= now:
            when, _, sid = heapq.heappop(self._heap)
            if self._due.get(sid) == when:
                del self._due[sid]
                found.append(sid)
        return found


class EngineSessions:
    """One Engine.IO server's sessions: their state, their deadlines, a close that never blocks."""

    def __init__(self, eio: Any) -> None:
        self.eio = eio
        self._states: dict[str, EngineSession] = {}
        self._lock = bookkeeping_lock()
        # Sessions without a welcomed socket yet, by the time they must have one.
        self._unjoined = Deadlines()
        # Sessions whose connect the guard refused, closed at this time.
        self._refused = Deadlines()
        # Polling sessions told CLOSE, closed after their next poll or at this time.
        self._closing = Deadlines()

    def __len__(self) -> int:
        """The sessions open now, as the guard knows them."""
        return len(self._states)

    def pending_deadlines(self) -> int:
        """Deadlines not reached yet (connects, refusals, closes)."""
        return sum(map(len, (self._unjoined, self._refused, self._closing)))

    def get(self, sid: str | None) -> EngineSession | None:
        """The session's state, or None when it is closed or was never opened here."""
        return self._states.get(sid)  # type: ignore[arg-type]

    def opened(
        self, sid: str, origin: str | None, *, allowed: bool, environ: Any = None
    ) -> EngineSession:
        """python-engineio accepted a new session: it must have a welcomed socket in time."""
        seconds = conf.WHITELIST_CONNECT_TIMEOUT
        if not allowed:
            seconds = min(seconds, REFUSED_CONNECT_SECONDS)
        state = self._states[sid] = EngineSession(
            origin, environ=environ, origin_refused=not allowed, connect_budget=seconds
        )
        self._start_connect_clock(sid, state)
        return state

    def _start_connect_clock(self, sid: str, state: EngineSession) -> None:
        with self._lock:
            self._unjoined.set(sid, time.monotonic() + state.connect_budget)

    def connecting(self, sid: str) -> None:
        """A connect of this session is being handled: its clock stops where it is."""
        with self._lock:
            deadline = self._unjoined.pop(sid)
        state = self._states.get(sid)
        if state is not None and deadline is not None:
            state.connect_budget = max(0.0, deadline - time.monotonic())

    def connect_handled(self, sid: str) -> None:
        """The connect is answered: if nothing was welcomed or refused, the clock restarts."""
        state = self._states.get(sid)
        if state is None or state.joined:
            return
        with self._lock:
            if sid in self._refused or sid in self._closing:
                return
        if sockets.engineio_socket(self.eio, sid) is not None:
            self._start_connect_clock(sid, state)

    def joined(self, sid: str) -> None:
        """A socket of this session was welcomed: no connect deadline any more."""
        state = self._states.get(sid)
        if state is not None:
            state.joined = True
        with self._lock:
            self._unjoined.pop(sid)
            self._refused.pop(sid)

    def refused(self, sid: str) -> None:
        """The guard refused this session's connect: close it after the refusal's grace.

        A refusal never extends the grace of an earlier one.
        """
        with self._lock:
            self._unjoined.pop(sid)
            if sid not in self._refused:
                self._refused.set(sid, time.monotonic() + REFUSAL_GRACE_SECONDS)

    def is_closing(self, sid: str) -> bool:
        """Was this polling session told CLOSE (nothing more may be queued for it)?"""
        return sid in self._closing

    def has_joined(self, sid: str) -> bool:
        """Has a socket of this session been welcomed?"""
        state = self._states.get(sid)
        return state is not None and state.joined

    def ended(self, sid: str) -> EngineSession | None:
        """python-engineio closed the session: forget it; its last state, if it had one."""
        with self._lock:
            self._unjoined.pop(sid)
            self._refused.pop(sid)
            self._closing.pop(sid)
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
            self._closing.set(sid, time.monotonic() + CLOSE_GRACE_SECONDS)
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
        with self._lock:
            expired_connects = self._unjoined.expired(now)
            expired_refusals = self._refused.expired(now)
            expired_closes = self._closing.expired(now)
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
            self._closing.pop(sid)
        # The client was already told CLOSE (or never polls again): do not queue another.
        sockets.close_engineio_session(self.eio, sid, abort=True)
