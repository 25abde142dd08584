"""whitelist.core.outages: a repeating failure is logged loudly once, and its end once."""

from __future__ import annotations

import logging

import pytest

from whitelist.core.outages import OutageLog


def test_an_outage_is_loud_once_quiet_after_and_its_end_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.outages")
    outage = OutageLog(logger, "The task failed", "The task works again")
    caplog.set_level(logging.DEBUG, logger="tests.outages")
    outage.succeeded()  # nothing had failed: nothing to say
    for attempt in range(3):
        try:
            raise ConnectionError(f"attempt {attempt}")
        except ConnectionError:
            outage.failed()
    outage.succeeded()
    outage.succeeded()
    logged = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert logged == [
        ("ERROR", "The task failed", True),
        ("DEBUG", "The task failed", True),
        ("DEBUG", "The task failed", True),
        ("WARNING", "The task works again", False),
    ]
    assert not outage.failing
