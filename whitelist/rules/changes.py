"""Push rule changes to every server process at once.

Without a push each server notices a change made elsewhere at its next revision
poll (``WHITELIST_REFRESH_INTERVAL``). Two pushes exist:

- on PostgreSQL, the change's own transaction sends a ``NOTIFY`` (delivered
  only if it commits) and every server ``LISTEN``s on a connection of its own;
- on any other database, with ``WHITELIST_CHANGES_URL`` set, the process that
  committed a change publishes on a Redis pub/sub channel that every server
  subscribes to (Guardsite's own channel: python-socketio's manager ignores
  kinds it does not know).

The poll stays as the safety net: slow while the listener is subscribed, as
fast as without a push while it is not, and the listener wakes the watcher
after every (re)subscription, since neither push keeps what is sent while
nobody listens.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import connections, router

from whitelist.conf import conf
from whitelist.rules.feeds import CHANGED, SUBSCRIBED, Feed, PostgresFeed, RedisFeed, uses_psycopg2

logger = logging.getLogger(__name__)

POSTGRESQL = "postgresql"
REDIS = "redis"
RETRY_SECONDS = (0.5, 1, 2, 5)
# The watcher's poll while the listener is not subscribed (the default without a push).
UNPUSHED_REFRESH_INTERVAL = 0.25
# The watcher's poll while changes are pushed: only the safety net.
PUSHED_REFRESH_INTERVAL = 5.0
# A listener pings this often, so a dead connection is noticed even when quiet.
HEALTH_CHECK_SECONDS = 15
# Publishing must never hold up the request that changed a rule for long.
PUBLISH_TIMEOUT = 1.0
PUBLISH_PAUSE_AFTER_FAILURE = 10.0

_publish_paused_until = 0.0


def rules_database() -> str:
    """The database alias the rules are written to (where a NOTIFY is sent)."""
    from whitelist.models import AllowlistRevision

    return router.db_for_write(AllowlistRevision)


def push_source() -> str | None:
    """How changes reach the servers: ``"postgresql"``, ``"redis"`` or None (poll only).

    ``LISTEN`` needs psycopg2 (``whitelist.W004`` says so on psycopg 3).
    """
    alias = rules_database()
    if connections[alias].vendor == "postgresql" and uses_psycopg2(alias):
        return POSTGRESQL
    return REDIS if conf.WHITELIST_CHANGES_URL else None


def refresh_interval() -> float:
    """Seconds between the watcher's polls of the revision: ``WHITELIST_REFRESH_INTERVAL``.

    Unset: 0.25, or 5 when changes are pushed (PostgreSQL's ``LISTEN``, or
    ``WHITELIST_CHANGES_URL``), where the poll is only the safety net (and
    0.25 again while the listener is not subscribed).
    """
    configured = conf.WHITELIST_REFRESH_INTERVAL
    if configured is not None:
        return configured
    return PUSHED_REFRESH_INTERVAL if push_source() else UNPUSHED_REFRESH_INTERVAL


def notify_in_transaction(using: str) -> None:
    """On PostgreSQL, queue a NOTIFY in the current transaction (sent when it commits)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, 'changed')", [conf.WHITELIST_CHANGES_CHANNEL])


class Listening:
    """Whether a listener is subscribed right now (the watcher polls fast when not)."""

    def __init__(self) -> None:
        self.subscribed = False
        self.failures = 0


@functools.cache
def _client(url: str) -> Any:
    import redis  # optional: only with WHITELIST_CHANGES_URL

    return redis.Redis.from_url(
        url, socket_timeout=PUBLISH_TIMEOUT, socket_connect_timeout=PUBLISH_TIMEOUT
    )


def publish_change() -> None:
    """Publish a committed change on Redis, if that is the push (never raises: the poll covers).

    After a failure, publishing pauses for a few seconds, so that a request
    deleting many rules with Redis away is not held up once per rule.
    """
    global _publish_paused_until
    if push_source() != REDIS or time.monotonic() < _publish_paused_until:
        return
    try:
        _client(conf.WHITELIST_CHANGES_URL).publish(conf.WHITELIST_CHANGES_CHANNEL, b"changed")
    except Exception:
        _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_AFTER_FAILURE
        logger.warning("Could not publish a rule change; servers will poll for it", exc_info=True)


def open_feed(source: str) -> Feed:
    channel = conf.WHITELIST_CHANGES_CHANNEL
    if source == POSTGRESQL:
        return PostgresFeed(rules_database(), channel)
    return RedisFeed(conf.WHITELIST_CHANGES_URL or "", channel)


def listen(
    wake: Callable[[], object],
    sleep: Callable[[float], object],
    *,
    stop: Callable[[], bool],
    listening: Listening,
    source: str,
) -> None:
    """Call ``wake`` for every change pushed, and once subscribed after each (re)connect.

    A lost or silent connection is logged once at WARNING (retries at DEBUG) and
    retried with backoff until ``stop()``; meanwhile ``listening.subscribed``
    is false and the watcher polls as often as without a push.
    """
    while not stop():
        feed = None
        try:
            feed = open_feed(source)
            _follow(feed, wake, stop, listening)
        except Exception:
            listening.failures += 1
            level = logging.WARNING if listening.failures == 1 else logging.DEBUG
            message = "Lost the rule-change feed (%s); polling meanwhile"
            logger.log(level, message, source, exc_info=True)
        finally:
            listening.subscribed = False
            if feed is not None:
                _close(feed)
        if listening.failures and not stop():
            wake()  # the watcher switches to the fast poll now
            sleep(RETRY_SECONDS[min(listening.failures, len(RETRY_SECONDS)) - 1])


def _follow(
    feed: Feed, wake: Callable[[], object], stop: Callable[[], bool], listening: Listening
) -> None:
    """Read the feed until ``stop()``; raise when the connection is lost or silent."""
    last_heard = time.monotonic()
    while not stop():
        heard = feed.wait(1.0)
        now = time.monotonic()
        if heard is not None:
            last_heard = now
            if heard == SUBSCRIBED:
                if listening.failures:
                    logger.warning("Listening for rule changes again")
                listening.subscribed, listening.failures = True, 0
                wake()  # whatever was pushed while nobody listened
            elif heard == CHANGED:
                wake()
        elif now - last_heard > HEALTH_CHECK_SECONDS + 5:
            raise ConnectionError("no answer to the health check")
        elif now - last_heard > HEALTH_CHECK_SECONDS and feed.ping():
            last_heard = now


def _close(feed: Feed) -> None:
    try:
        feed.close()
    except Exception:
        logger.debug("Could not close the rule-change feed", exc_info=True)
