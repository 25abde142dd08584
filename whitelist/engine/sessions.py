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
that expire.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from whitelist.conf import conf
from whitelist.engine import hooks as upstream

logger = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 2.0
REFUSAL_GRACE_SECONDS = 1.0
REFUSED_CONNECT_SECONDS = 3.0
SWEEP_SECONDS = 0.5


class SessionLifecycle:
    """Deadlines for one Engine.IO server's sessions, and a close that never blocks."""

    def __init__(self, eio: Any) -> None:
        self.eio = eio
        self._lock = threading.Lock()
        # Sessions without a welcomed socket yet, by the time they must have one; one
        # dict per timeout, so that each stays in deadline order.
        self._unjoined: dict[str, float] = {}
        self._unjoined_refused: dict[str, float] = {}
        # Sessions that have had a socket welcomed: no deadline, no budget.
        self._joined: set[str] = set()
        # Sessions whose connect the guard refused, closed at this time.
        self._refused: dict[str, float] = {}
        # Polling sessions told CLOSE, closed after their next poll or at this time.
        self._closing: dict[str, float] = {}

    def __len__(self) -> int:
        return sum(map(len, (self._unjoined, self._unjoined_refused, self._refused, self._closing)))

    def opened(self, sid: str, *, allowed: bool) -> None:
        """A new session: it must have a welcomed socket in time."""
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
        with self._lock:
            if sid in self._joined or sid in self._refused or sid in self._closing:
                return
        if upstream.engineio_socket(self.eio, sid) is not None:
            self.opened(sid, allowed=True)

    def joined(self, sid: str) -> None:
        """A socket of this session was welcomed: no connect deadline any more."""
        with self._lock:
            self._joined.add(sid)
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
        return sid in self._joined

    def ended(self, sid: str) -> None:
        """python-engineio closed the session."""
        with self._lock:
            self._unjoined.pop(sid, None)
            self._unjoined_refused.pop(sid, None)
            self._refused.pop(sid, None)
            self._closing.pop(sid, None)
            self._joined.discard(sid)

    def close(self, sid: str) -> None:
        """End a session without waiting for its client; what is queued is still sent."""
        socket = upstream.engineio_socket(self.eio, sid)
        if socket is None:
            return
        if upstream.is_websocket(socket):
            upstream.close_engineio_session(self.eio, sid, abort=False)
            return
        with self._lock:
            if sid in self._closing:
                return
            self._closing[sid] = time.monotonic() + CLOSE_GRACE_SECONDS
        upstream.tell_engineio_close(socket)

    def disconnect(self, sid: str | None = None) -> None:
        """``engineio.Server.disconnect``, without its wait for the client."""
        if sid is not None:
            self.close(sid)
            return
        for each in list(self.eio.sockets):
            upstream.close_engineio_session(self.eio, each, abort=False)

    def polled(self, sid: str) -> None:
        """A poll of ``sid`` returned: close it if it was closing and has nothing left to send."""
        if sid not in self._closing:
            return
        socket = upstream.engineio_socket(self.eio, sid)
        if socket is None or upstream.has_nothing_queued(socket):
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
        upstream.close_engineio_session(self.eio, sid, abort=True)


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
