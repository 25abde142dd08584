"""Refusals are logged by rate and reason: clients can neither flood the log nor mute it."""

from __future__ import annotations

import logging

import pytest

from whitelist import refusal_log
from whitelist.guard import NOT_ALLOWED, NULL_ORIGIN, Decision
from whitelist.ratelimited_log import RateLimitedLog


def refusal(origin: str, reason: str = NOT_ALLOWED) -> Decision:
    return Decision(False, reason, origin, "origin", detail="no rule matches")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    log = RateLimitedLog(refusal_log.logger, burst=3, window=60, clock=lambda: now[0])
    monkeypatch.setattr(refusal_log, "refusals", log)
    return now


def at_info(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_a_flood_of_junk_origins_is_counted_not_written(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist")
    for number in range(1000):
        refusal_log.log_refusal(refusal(f"https://junk{number}.test"), "/")
    assert len(at_info(caplog)) == 3  # the burst, then nothing per junk origin
    clock[0] += 61
    caplog.clear()
    refusal_log.log_refusal(refusal("https://real.test"), "/")
    assert at_info(caplog) == [
        "... and 997 more refusals (origin-not-allowed) in the 60 s before (logged at DEBUG)",
        "Refused https://real.test on /: no rule matches",
    ]


def test_one_reason_flooded_does_not_mute_another(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist")
    for number in range(100):
        refusal_log.log_refusal(refusal(f"https://junk{number}.test"), "/")
    caplog.clear()
    refusal_log.log_refusal(refusal("null", NULL_ORIGIN), "/chat")
    assert at_info(caplog) == ["Refused null on /chat: no rule matches"]


def test_memory_does_not_grow_with_origins(clock: list[float]) -> None:
    for number in range(5000):
        refusal_log.log_refusal(refusal(f"https://junk{number}.test"), "/")
    assert len(refusal_log.refusals._windows) == 1
