"""Where a server hears of rule changes: a PostgreSQL ``LISTEN`` or a Redis subscription.

A feed is one open subscription. ``wait(timeout)`` returns ``SUBSCRIBED`` once,
when the subscription is in place, ``CHANGED`` for each change heard, ``HEARD``
for anything else from the server, or ``None`` when nothing came. ``ping()``
asks the server for a sign of life and returns True if it answered at once (a
Redis answer comes later, through ``wait``). Any failure raises:
``changes.listen`` reconnects.
"""

from __future__ import annotations

import selectors
from typing import Any, Protocol

from django.db import connections

SUBSCRIBED = "subscribed"
CHANGED = "changed"
HEARD = "heard"
# The PostgreSQL listener's connection, as pg_stat_activity shows it.
APPLICATION_NAME = "whitelist listener"
# libpq's TCP keepalives for the listener: a dead peer is noticed in about a minute.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class Feed(Protocol):
    def wait(self, timeout: float) -> str | None: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class PostgresFeed:
    """``LISTEN`` on a connection of its own (autocommit), outside Django's per-thread ones.

    Needs psycopg2 (``uses_psycopg2``), whose connection eventlet makes
    cooperative; the wait is a selector on its socket, which eventlet makes
    cooperative too. TCP keepalives (unless the database's OPTIONS set them)
    let a connection that died without a word fail within about a minute.
    """

    def __init__(self, alias: str, channel: str) -> None:
        wrapper = connections[alias]
        params = KEEPALIVES | wrapper.get_connection_params()
        self._connection = wrapper.get_new_connection(params)
        self._selector = selectors.DefaultSelector()
        self._subscribed = False
        try:
            self._connection.autocommit = True
            with self._connection.cursor() as cursor:
                # Named, so that operators can tell it in pg_stat_activity.
                cursor.execute("SET application_name = %s", [APPLICATION_NAME])
                cursor.execute(f"LISTEN {wrapper.ops.quote_name(channel)}")
            self._selector.register(self._connection, selectors.EVENT_READ)
        except BaseException:
            self.close()
            raise

    def wait(self, timeout: float) -> str | None:
        if not self._subscribed:
            self._subscribed = True
            return SUBSCRIBED
        if not self._connection.notifies and self._selector.select(timeout):
            self._connection.poll()
        if self._connection.notifies:
            self._connection.notifies.clear()  # one reload covers them all
            return CHANGED
        return None

    def ping(self) -> bool:
        with self._connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True

    def close(self) -> None:
        self._selector.close()
        self._connection.close()


def uses_psycopg2(alias: str) -> bool:
    """Whether Django's PostgreSQL backend for ``alias`` runs on psycopg2 (not psycopg 3)."""
    return getattr(connections[alias].Database, "__name__", "") == "psycopg2"


class RedisFeed:
    """A subscription to a Redis pub/sub channel."""

    def __init__(self, url: str, channel: str) -> None:
        import redis  # optional: only with WHITELIST_CHANGES_URL

        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_keepalive=True)
        self._pubsub: Any = client.pubsub()
        self._pubsub.subscribe(channel)

    def wait(self, timeout: float) -> str | None:
        message = self._pubsub.get_message(timeout=timeout)
        if message is None:
            return None
        return {"subscribe": SUBSCRIBED, "message": CHANGED}.get(message["type"], HEARD)

    def ping(self) -> bool:
        self._pubsub.ping()
        return False

    def close(self) -> None:
        self._pubsub.close()
