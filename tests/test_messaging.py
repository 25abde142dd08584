"""python-socketio's Redis manager logs a lost Redis once per outage, not at every retry."""

from __future__ import annotations

import logging

import pytest

from guardsite import messaging

RETRY = "Cannot receive from redis... retrying in %s secs"


def test_retries_of_one_outage_are_one_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(messaging.time, "monotonic", lambda: now[0])
    logger = messaging.OncePerOutage(logging.getLogger("tests.queue"))
    caplog.set_level(logging.DEBUG, logger="tests.queue")
    for seconds in (1, 2, 4, 8, 16, 32, 60, 60):  # python-socketio's backoff
        logger.error(RETRY, seconds)
        now[0] += seconds
    logger.info("redis backend initialized.")
    now[0] += messaging.OUTAGE_ENDS_AFTER_QUIET_SECONDS  # back, then lost again
    logger.error(RETRY, 1)
    levels = [(record.levelname, record.getMessage()[:26]) for record in caplog.records]
    assert levels == [
        ("ERROR", "Cannot receive from redis."),
        *[("DEBUG", "Cannot receive from redis.")] * 7,
        ("INFO", "redis backend initialized."),
        ("ERROR", "Cannot receive from redis."),
    ]


def test_no_queue_no_manager() -> None:
    assert messaging.client_manager(None) is None
