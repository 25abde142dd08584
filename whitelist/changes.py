"""Push rule changes to every server process at once, over a Redis pub/sub channel.

Without it each server notices a change made elsewhere at its next revision
poll (``WHITELIST_REFRESH_INTERVAL``). With ``WHITELIST_CHANGES_URL`` set, the
process that commits a change publishes the new revision on
``WHITELIST_CHANGES_CHANNEL`` and every server's listener wakes its watcher at
once. The poll stays, less often, as the safety net: pub/sub drops what is
sent while a listener is away, so a listener also wakes the watcher after
every (re)subscription. The channel is Guardsite's own: python-socketio's
manager ignores message kinds it does not know.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from .conf import conf

logger = logging.getLogger(__name__)

RETRY_SECONDS = (0.5, 1, 2, 5)


@functools.cache
def _client(url: str) -> Any:
    import redis  # optional: only with WHITELIST_CHANGES_URL

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def publish_change() -> None:
    """Tell every listening server that the rules changed (never raises: the poll covers)."""
    url = conf.WHITELIST_CHANGES_URL
    if not url:
        return
    try:
        _client(url).publish(conf.WHITELIST_CHANGES_CHANNEL, b"changed")
    except Exception:
        logger.warning("Could not publish a rule change; servers will poll for it", exc_info=True)


def listen(
    wake: Callable[[], object],
    sleep: Callable[[float], object],
    *,
    stop: Callable[[], bool],
) -> None:
    """Call ``wake`` for every change published, and after every (re)subscription.

    A lost connection is logged once at WARNING (then at INFO) and retried
    with backoff until ``stop()``; the last rules stay in force meanwhile.
    """
    import redis

    url, channel = conf.WHITELIST_CHANGES_URL, conf.WHITELIST_CHANGES_CHANNEL
    failures = 0
    while not stop():
        pubsub = redis.Redis.from_url(url, socket_connect_timeout=5).pubsub()
        try:
            pubsub.subscribe(channel)
            if failures:
                logger.warning("Listening for rule changes again after %d failure(s)", failures)
            failures = 0
            wake()  # whatever was published while nobody listened
            while not stop():
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    wake()
        except Exception:
            failures += 1
            level = logging.WARNING if failures == 1 else logging.INFO
            logger.log(level, "Lost the rule-change channel; polling meanwhile", exc_info=True)
            sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])
        finally:
            try:
                pubsub.close()
            except Exception:
                logger.debug("Could not close the rule-change subscription", exc_info=True)
