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
from typing import Any

import redis
import socketio
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from whitelist.engine.logs import OncePerOutage

# A Redis that does not answer must not hold a handler or a view for minutes.
_OPTIONS = {"socket_connect_timeout": 2, "socket_keepalive": True}


QUEUE_LOGGER = "guardsite.messaging.queue"
_once_per_outage = OncePerOutage()


def client_manager(url: str | None) -> socketio.RedisManager | None:
    """The manager a server process uses: Redis when a queue is configured, else none."""
    if not url:
        return None
    logger = logging.getLogger(QUEUE_LOGGER)
    for quieted in (logger, logging.getLogger("socketio")):
        quieted.addFilter(_once_per_outage)
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
