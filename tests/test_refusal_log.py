"""Refusals are logged without letting clients flood the log or mute it."""

from __future__ import annotations

import logging

import pytest

from whitelist import refusal_log
from whitelist.guard import NOT_ALLOWED, Decision


def refusal(origin: str) -> Decision:
    return Decision(False, NOT_ALLOWED, origin, "origin", detail="no rule matches")


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refusal_log, "_logged", set())


def levels(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [record.levelno for record in caplog.records]


def test_each_origin_is_logged_at_info_once_then_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="whitelist")
    for _ in range(3):
        refusal_log.log_refusal(refusal("https://evil.test"), "/")
    assert levels(caplog) == [logging.INFO, logging.DEBUG, logging.DEBUG]
    assert "Refused https://evil.test on /: no rule matches" in caplog.records[0].message


def test_many_distinct_origins_cannot_mute_a_new_one(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusal_log, "_MAX_REMEMBERED", 10)
    caplog.set_level(logging.INFO, logger="whitelist")
    for number in range(10):
        refusal_log.log_refusal(refusal(f"https://evil{number}.test"), "/")
    caplog.clear()
    refusal_log.log_refusal(refusal("https://new.test"), "/")
    assert levels(caplog) == [logging.INFO]
