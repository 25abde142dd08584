"""python-socketio's Redis manager logs a lost Redis once per outage, not at every retry."""

from __future__ import annotations

import logging

import pytest

from guardsite import messaging
from harness.live import free_port
from whitelist.engine import logs

RETRY = "Cannot receive from redis... retrying in %s secs"


def test_retries_of_one_outage_are_one_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    logger = logging.getLogger("tests.queue")
    logger.addFilter(logs.OncePerOutage())
    caplog.set_level(logging.DEBUG, logger="tests.queue")
    for seconds in (1, 2, 4, 8, 16, 32, 60, 60):  # python-socketio's backoff
        logger.error(RETRY, seconds)
        now[0] += seconds
    logger.info("redis backend initialized.")
    now[0] += logs.OUTAGE_ENDS_AFTER_QUIET_SECONDS  # back, then lost again
    logger.error(RETRY, 1)
    levels = [(record.levelname, record.getMessage()[:26]) for record in caplog.records]
    assert levels == [
        ("ERROR", "Cannot receive from redis."),
        *[("DEBUG", "Cannot receive from redis.")] * 7,
        ("INFO", "redis backend initialized."),
        ("ERROR", "Cannot receive from redis."),
    ]


def test_the_real_manager_says_once_that_redis_is_away_and_every_lost_emit(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whichever logger this python-socketio release logs on (it changed in 5.15)."""
    monkeypatch.setattr(messaging._once_per_outage, "_last_failure", float("-inf"))
    caplog.set_level(logging.DEBUG, logger=messaging.QUEUE_LOGGER)
    caplog.set_level(logging.DEBUG, logger="socketio")
    manager = messaging.client_manager(f"redis://127.0.0.1:{free_port()}/0")
    assert manager is not None
    for _ in range(3):
        manager._publish({"method": "emit", "event": "lost"})  # what an emit publishes
    said = [
        (record.levelname, record.getMessage().split("...")[1].split()[0])
        for record in caplog.records
        if record.getMessage().startswith("Cannot publish to redis")
    ]
    assert (
        said
        == [("ERROR", "retrying"), ("ERROR", "giving")]
        + [
            ("DEBUG", "retrying"),
            ("ERROR", "giving"),
        ]
        * 2
    )


def test_no_queue_no_manager() -> None:
    assert messaging.client_manager(None) is None
