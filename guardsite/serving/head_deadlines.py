"""Request-head deadlines under eventlet: one hub timer for all of a server's connections.

Each request head must be complete ``seconds`` after it began, or a client
sending it a byte at a time (slowloris) holds its connection's green thread as
long as it likes. An ``eventlet.Timeout`` per request armed a hub timer and
cancelled it again: a timer object, the hub's heap and several Python calls
each way, on each of a long-polling connect's four requests. Every deadline of
a server has the same length, so the heads in the order they began are the
heads in the order they fall due: a dict, in insertion order, is the queue,
and a single hub timer, set for the first head in it, ends those that are due
and sets itself for the next.
"""

from __future__ import annotations

import logging
from typing import Any

import greenlet
from eventlet.hubs import get_hub

logger = logging.getLogger(__name__)


class SlowHead(BaseException):
    """Thrown into a connection's green thread whose request head is overdue.

    A ``BaseException``, as ``eventlet.Timeout`` is: no ``except Exception`` on the
    way may take it for an error of its own.
    """


class HeadDeadlines:
    """The request heads being read by one server's connections, and when each is due."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._hub = get_hub()
        # key -> (due, green thread), in the order the heads began: the order they fall due.
        self._heads: dict[Any, tuple[float, Any]] = {}
        self._timer: Any = None

    def start(self, key: Any) -> None:
        """The current green thread begins reading a request head for ``key``."""
        heads = self._heads
        heads.pop(key, None)  # to the end of the queue, where its due time belongs
        heads[key] = (self._hub.clock() + self.seconds, greenlet.getcurrent())
        if self._timer is None:
            self._timer = self._hub.schedule_call_global(self.seconds, self._end_overdue)

    def stop(self, key: Any) -> None:
        """``key``'s head is complete, refused, or its connection is gone."""
        self._heads.pop(key, None)

    def __len__(self) -> int:
        return len(self._heads)

    def _end_overdue(self) -> None:
        """Throw ``SlowHead`` into each overdue head's green thread (in the hub)."""
        self._timer = None
        now = self._hub.clock()
        heads = self._heads
        overdue = []
        for key, head in heads.items():
            due = head[0]
            if due > now:
                self._timer = self._hub.schedule_call_global(due - now, self._end_overdue)
                break
            overdue.append((key, head))
        for key, head in overdue:
            # Each throw runs a thread until it blocks again: it may only stop its own head.
            if heads.get(key) is not head:
                continue
            del heads[key]
            thread = head[1]
            if thread.dead:
                continue
            # The thrown thread runs here, in the hub, until it blocks again: whatever it
            # raises meanwhile must not stop the other overdue heads from being ended.
            try:
                thread.throw(SlowHead())
            except SlowHead:  # the thread did not handle it: ended all the same
                logger.debug("A green thread let its head deadline through", exc_info=True)
            except Exception:
                logger.warning("A connection failed while ending its overdue head", exc_info=True)
