"""python-engineio's 'Session is disconnected' race is not an error; other errors still are."""

from __future__ import annotations

import logging

import pytest

from whitelist.server.guarded import GuardedServer


def test_a_request_racing_its_sessions_close_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = GuardedServer(async_mode="threading")
    caplog.set_level(logging.INFO, logger=server.eio.logger.name)
    # What python-engineio logs, word for word, through its _log_error_once().
    # Both under the one key python-engineio uses for them: the race must not spend it.
    server.eio._log_error_once(f"{KeyError('Session is disconnected')} abc", "bad-sid")
    server.eio._log_error_once("Invalid session xyz", "bad-sid")
    assert [(r.levelname, r.getMessage()[:15]) for r in caplog.records] == [
        ("ERROR", "Invalid session")
    ]
