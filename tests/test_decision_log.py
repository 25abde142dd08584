"""Decisions are logged with their fields; refusals by rate and reason, so clients can
neither flood the log nor mute it; JSON output is one formatter away."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.jsonlog import JSONFormatter
from whitelist.reporting import decision_log
from whitelist.reporting.decision_log import ADMITTED, REFUSED, REPORT_ONLY, log_decision
from whitelist.rules.decision import ALLOWED, NOT_ALLOWED, NULL_ORIGIN, Decision


def refusal(origin: str, reason: str = NOT_ALLOWED) -> Decision:
    return Decision(False, reason, origin, "origin", detail="no rule matches")


def log_refusal(decision: Decision, namespace: str) -> None:
    log_decision(REFUSED, decision, namespace, "127.0.0.1")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    log = RateLimitedLog(decision_log.logger, burst=3, window=60, clock=lambda: now[0])
    monkeypatch.setattr(decision_log, "refusals", log)
    return now


def at_info(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_a_flood_of_junk_origins_is_counted_not_written(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist")
    for number in range(1000):
        log_refusal(refusal(f"https://junk{number}.test"), "/")
    assert len(at_info(caplog)) == 3  # the burst, then nothing per junk origin
    clock[0] += 61
    caplog.clear()
    log_refusal(refusal("https://real.test"), "/")
    assert at_info(caplog) == [
        "... and 997 more refusals (origin-not-allowed) in the 60 s before (logged at DEBUG)",
        "Refused https://real.test on / from 127.0.0.1: no rule matches",
    ]


def test_one_reason_flooded_does_not_mute_another(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist")
    for number in range(100):
        log_refusal(refusal(f"https://junk{number}.test"), "/")
    caplog.clear()
    log_refusal(refusal("null", NULL_ORIGIN), "/chat")
    assert at_info(caplog) == ["Refused null on /chat from 127.0.0.1: no rule matches"]


def test_memory_does_not_grow_with_origins(clock: list[float]) -> None:
    for number in range(5000):
        log_refusal(refusal(f"https://junk{number}.test"), "/")
    assert len(decision_log.refusals._windows) == 1


def test_a_refusal_carries_every_field(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist.decisions")
    log_refusal(refusal("https://evil.test"), "/chat")
    assert caplog.records[-1].decision == {
        "outcome": "refused",
        "origin": "https://evil.test",
        "source": "origin",
        "address": "127.0.0.1",
        "namespace": "/chat",
        "rule": None,
        "reason": NOT_ALLOWED,
        "detail": "no rule matches",
    }


def test_admissions_are_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    allowed = Decision(True, ALLOWED, "https://shop.test", "origin", "https://shop.test")
    caplog.set_level(logging.INFO, logger="whitelist.decisions")
    log_decision(ADMITTED, allowed, "/", "10.0.0.1")
    assert caplog.records == []
    caplog.set_level(logging.DEBUG, logger="whitelist.decisions")
    log_decision(ADMITTED, allowed, "/", "10.0.0.1")
    assert [r.getMessage() for r in caplog.records] == [
        "Admitted https://shop.test on / from 10.0.0.1: rule https://shop.test"
    ]
    assert caplog.records[0].decision["rule"] == "https://shop.test"


def test_report_only_refusals_are_warnings(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist.decisions")
    log_decision(REPORT_ONLY, refusal("https://new.test"), "/", "::1")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "Would refuse https://new.test on / from ::1: no rule matches"
    assert record.decision["outcome"] == "report-only"


def test_json_format_writes_the_decision_fields_as_keys(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="whitelist.decisions")
    log_refusal(refusal("https://evil.test"), "/chat")
    line = JSONFormatter().format(caplog.records[-1])
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "INFO"
    assert entry["logger"] == "whitelist.decisions"
    assert entry["message"] == "Refused https://evil.test on /chat from 127.0.0.1: no rule matches"
    assert (entry["origin"], entry["namespace"], entry["reason"]) == (
        "https://evil.test",
        "/chat",
        NOT_ALLOWED,
    )


def test_json_format_keeps_a_traceback_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "failed"
    assert "ValueError: boom" in entry["exception"]
