"""python-engineio's 'Session is disconnected' race is not an error; other errors still are;
what clients wrote reaches no handler raw, upstream's own included."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest

from whitelist.engine.logs import ErrorsStream
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


def test_an_unknown_session_id_is_logged_escaped_by_upstreams_own_handler() -> None:
    """python-engineio writes the sid as it came, on a bare handler of its own."""
    server = GuardedServer(async_mode="threading")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # what python-engineio adds when unconfigured
    server.eio.logger.addHandler(handler)
    try:
        server.eio._log_error_once("Invalid session x\x1b[2J\nFORGED\x85line\u2028", "bad-sid")
    finally:
        server.eio.logger.removeHandler(handler)
    assert stream.getvalue() == (
        "Invalid session x\\x1b[2J\\nFORGED\\x85line\\u2028"
        " (further occurrences of this error will be logged with level INFO)\n"
    )


def test_python_socketio_records_are_escaped_too(caplog: pytest.LogCaptureFixture) -> None:
    server = GuardedServer(async_mode="threading")
    server.logger.error("Unknown namespace %s", "/x\x1b\nFORGED")
    assert caplog.records[-1].getMessage() == "Unknown namespace /x\\x1b\\nFORGED"


def test_a_clean_record_keeps_its_template_and_arguments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = GuardedServer(async_mode="threading")
    server.eio.logger.error("Invalid session %s", "abc")
    assert (caplog.records[-1].msg, caplog.records[-1].args) == ("Invalid session %s", ("abc",))


def test_a_record_whose_template_does_not_fit_raises_nowhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The filter formatted it unguarded: the error reached python-engineio's own code."""
    reported = []
    monkeypatch.setattr(logging, "raiseExceptions", False)
    monkeypatch.setattr(logging.Handler, "handleError", lambda self, record: reported.append(1))
    server = GuardedServer(async_mode="threading")
    handler = logging.StreamHandler(io.StringIO())
    server.eio.logger.addHandler(handler)
    try:
        server.eio.logger.error("%d sessions", "x")  # logging reports it, the caller goes on
    finally:
        server.eio.logger.removeHandler(handler)
    assert reported


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("done", "done\n"),
        ("done\n", "done\n"),
        ("bad \x1b[2J\rFORGED\x85x\n", "bad \\x1b[2J\\rFORGED\\x85x\n"),
        (
            "Traceback:\n  File x\nError: a\nFORGED\n",
            "Traceback:\n    File x\n  Error: a\n  FORGED\n",
        ),
    ],
)
def test_wsgi_errors_writes_are_escaped_and_only_their_first_line_at_the_margin(
    written: str, shown: str
) -> None:
    stream = io.StringIO()
    ErrorsStream(stream).write(written)
    assert stream.getvalue() == shown


def test_a_logger_that_cannot_be_filtered_is_named(caplog: pytest.LogCaptureFixture) -> None:
    """A project's own logger object (not a logging.Logger) silently went unescaped."""

    class Printer:
        """What a structured logger might offer instead: info, error, ... and no filters."""

        def __getattr__(self, level: str) -> Callable[..., None]:
            return lambda *args, **kwargs: None

    GuardedServer(async_mode="threading", engineio_logger=Printer())
    assert any("is not escaped" in record.getMessage() for record in caplog.records)
