"""Emit to Socket.IO clients from anywhere: a view, a management command, a worker process.

With ``GUARDSITE_MESSAGE_QUEUE`` set, every server process listens on
python-socketio's default Redis channel; this helper publishes there through a
``write_only`` Redis manager, so the event reaches the clients of every node.
Any other ``socketio.RedisManager(url, write_only=True)`` on the same URL does
the same.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import redis
import socketio
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# A Redis that does not answer must not hold a handler or a view for minutes.
_OPTIONS = {"socket_connect_timeout": 2, "socket_keepalive": True}


# python-socketio retries a lost Redis every 1, 2, 4 ... 60 s: a quieter gap ends an outage.
OUTAGE_ENDS_AFTER_QUIET_SECONDS = 120


class OncePerOutage(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The Redis manager's logger: its retry errors once per outage, then at DEBUG.

    python-socketio's ``RedisManager`` logs every retry of a lost Redis at
    ERROR and never says when it is back; an outage of an hour would log
    about seventy errors. The first of an outage stays an ERROR.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self._last_failure = float("-inf")

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING and str(msg).startswith("Cannot "):
            now = time.monotonic()
            if now - self._last_failure < OUTAGE_ENDS_AFTER_QUIET_SECONDS:
                level = logging.DEBUG
            else:
                msg = f"{msg} (further retries of this outage are logged at DEBUG)"
            self._last_failure = now
        super().log(level, msg, *args, **kwargs)


def client_manager(url: str | None) -> socketio.RedisManager | None:
    """The manager a server process uses: Redis when a queue is configured, else none."""
    if not url:
        return None
    logger = OncePerOutage(logging.getLogger("guardsite.messaging.queue"))
    return socketio.RedisManager(url, redis_options=_OPTIONS, logger=logger)


@functools.cache
def _publisher(url: str) -> socketio.RedisManager:
    return socketio.RedisManager(
        url, write_only=True, redis_options=_OPTIONS | {"socket_timeout": 2}
    )


@functools.cache
def _probe(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, **_OPTIONS)


def emit(event: str, data: Any = None, *, to: str | None = None, namespace: str = "/") -> None:
    """Send ``event`` to a room or sid (``to``), or to every client of ``namespace``.

    Raises ``redis.ConnectionError`` when the queue does not answer.
    """
    url = settings.GUARDSITE_MESSAGE_QUEUE
    if not url:
        raise ImproperlyConfigured(
            "GUARDSITE_MESSAGE_QUEUE is not set: without a message queue only the server "
            "process itself can emit to its clients (GuardedServer.emit)."
        )
    # python-socketio's manager logs and drops an emit it cannot publish: ask Redis first,
    # so that a caller learns that its event went nowhere.
    _probe(url).ping()
    _publisher(url).emit(event, data, namespace=namespace, room=to)
