"""Push rule changes to every server process at once, over a Redis pub/sub channel.

Without it each server notices a change made elsewhere at its next revision
poll (``WHITELIST_REFRESH_INTERVAL``). With ``WHITELIST_CHANGES_URL`` set, the
process that commits a change publishes on ``WHITELIST_CHANGES_CHANNEL`` and
every server's listener wakes its watcher at once. The poll stays as the
safety net: slow while the listener is subscribed, as fast as without a push
while it is not, and the listener also wakes the watcher after every
(re)subscription, since pub/sub drops what is sent while nobody listens. The
channel is Guardsite's own: python-socketio's manager ignores kinds it does
not know.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from .conf import conf

logger = logging.getLogger(__name__)

RETRY_SECONDS = (0.5, 1, 2, 5)
# The watcher's poll while the listener is not subscribed (the default without a push).
UNPUSHED_REFRESH_INTERVAL = 0.25
# A listener pings Redis this often, so a dead connection is noticed even when quiet.
HEALTH_CHECK_SECONDS = 15
# Publishing must never hold up the request that changed a rule for long.
PUBLISH_TIMEOUT = 1.0
PUBLISH_PAUSE_AFTER_FAILURE = 10.0

_publish_paused_until = 0.0


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
    """Tell every listening server that the rules changed (never raises: the poll covers).

    After a failure, publishing pauses for a few seconds, so that a request
    deleting many rules with Redis away is not held up once per rule.
    """
    global _publish_paused_until
    url = conf.WHITELIST_CHANGES_URL
    if not url or time.monotonic() < _publish_paused_until:
        return
    try:
        _client(url).publish(conf.WHITELIST_CHANGES_CHANNEL, b"changed")
    except Exception:
        _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_AFTER_FAILURE
        logger.warning("Could not publish a rule change; servers will poll for it", exc_info=True)


def listen(
    wake: Callable[[], object],
    sleep: Callable[[float], object],
    *,
    stop: Callable[[], bool],
    listening: Listening,
) -> None:
    """Call ``wake`` for every change published, and once subscribed after each (re)connect.

    A lost or silent connection is logged once at WARNING (then at INFO) and
    retried with backoff until ``stop()``; meanwhile ``listening.subscribed``
    is false and the watcher polls as often as without a push.
    """
    while not stop():
        pubsub = None
        try:
            import redis

            client = redis.Redis.from_url(
                conf.WHITELIST_CHANGES_URL, socket_connect_timeout=5, socket_keepalive=True
            )
            pubsub = client.pubsub()
            pubsub.subscribe(conf.WHITELIST_CHANGES_CHANNEL)
            _follow(pubsub, wake, stop, listening)
        except Exception:
            listening.failures += 1
            level = logging.WARNING if listening.failures == 1 else logging.INFO
            logger.log(level, "Lost the rule-change channel; polling meanwhile", exc_info=True)
        finally:
            listening.subscribed = False
            if pubsub is not None:
                _close(pubsub)
        if listening.failures and not stop():
            wake()  # the watcher switches to the fast poll now
            sleep(RETRY_SECONDS[min(listening.failures, len(RETRY_SECONDS)) - 1])


def _follow(
    pubsub: Any, wake: Callable[[], object], stop: Callable[[], bool], listening: Listening
) -> None:
    """Read the subscription until ``stop()``; raise when the connection is lost or silent."""
    last_heard = time.monotonic()
    while not stop():
        message = pubsub.get_message(timeout=1.0)
        now = time.monotonic()
        if message is not None:
            last_heard = now
            if message["type"] == "subscribe":
                if listening.failures:
                    logger.warning("Listening for rule changes again")
                listening.subscribed, listening.failures = True, 0
                wake()  # whatever was published while nobody listened
            elif message["type"] == "message":
                wake()
        elif now - last_heard > HEALTH_CHECK_SECONDS + 5:
            raise ConnectionError("no answer from Redis to the health check")
        elif now - last_heard > HEALTH_CHECK_SECONDS:
            pubsub.ping()


def _close(pubsub: Any) -> None:
    try:
        pubsub.close()
    except Exception:
        logger.debug("Could not close the rule-change subscription", exc_info=True)
