"""Where a server hears of rule changes: a PostgreSQL ``LISTEN`` or a Redis subscription.

A feed is one open subscription. ``wait(timeout)`` returns ``SUBSCRIBED`` once,
when the subscription is in place, ``CHANGED`` for each change heard, ``HEARD``
for anything else from the server, or ``None`` when nothing came. ``ping()``
asks the server for a sign of life and returns True if it answered at once (a
Redis answer comes later, through ``wait``). Any failure raises:
``changes.listen`` reconnects.
"""

from __future__ import annotations

import select
from typing import Any, Protocol

from django.db import connections

SUBSCRIBED = "subscribed"
CHANGED = "changed"
HEARD = "heard"
# The PostgreSQL listener's connection, as pg_stat_activity shows it.
APPLICATION_NAME = "whitelist listener"


class Feed(Protocol):
    def wait(self, timeout: float) -> str | None: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class PostgresFeed:
    """``LISTEN`` on a connection of its own (autocommit), outside Django's per-thread ones.

    Needs psycopg2, whose connection eventlet makes cooperative; the wait
    is a ``select`` on its socket, which eventlet makes cooperative too.
    """

    def __init__(self, alias: str, channel: str) -> None:
        wrapper = connections[alias]
        self._connection = wrapper.get_new_connection(wrapper.get_connection_params())
        self._connection.autocommit = True
        self._subscribed = False
        with self._connection.cursor() as cursor:
            # Named, so that operators can tell it in pg_stat_activity.
            cursor.execute("SET application_name = %s", [APPLICATION_NAME])
            cursor.execute(f"LISTEN {wrapper.ops.quote_name(channel)}")

    def wait(self, timeout: float) -> str | None:
        if not self._subscribed:
            self._subscribed = True
            return SUBSCRIBED
        if not self._connection.notifies:
            readable, _, _ = select.select([self._connection], [], [], timeout)
            if readable:
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
        self._connection.close()


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
