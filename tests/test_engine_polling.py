"""The long-polling POST check in-process (whitelist.engine.polling).

tests/test_polling.py proves the 400 and the quiet log on a live server; these
fail in make check's seconds when the check itself breaks.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

import pytest

from tests.engine_server import open_polling_session
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine import polling
from whitelist.engine.polling import undecodable_post
from whitelist.server.guarded import GuardedServer

LIMIT = 10_000


class ReadOnce(io.BytesIO):
    """A request body as a WSGI server hands it over: it cannot be read twice."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        assert self.reads == 1, "the request body was read twice"
        return super().read(size)


def post_environ(body: bytes, content_length: str | None = None) -> dict[str, Any]:
    length = str(len(body)) if content_length is None else content_length
    return {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": length, "wsgi.input": ReadOnce(body)}


@pytest.mark.parametrize("content_length", ["ten", "1e3", "0x10", " "])
def test_a_content_length_that_is_not_a_number_is_refused_unread(content_length: str) -> None:
    environ = post_environ(b"4hello", content_length)
    body = environ["wsgi.input"]
    assert undecodable_post(environ, LIMIT) == "Content-Length is not a number"
    assert environ["wsgi.input"] is body and body.reads == 0


def test_a_body_over_the_limit_is_left_unread_to_python_engineio() -> None:
    """python-engineio refuses it unread: reading it here would cost the memory it spares."""
    environ = post_environ(b"4" + b"x" * LIMIT)
    body = environ["wsgi.input"]
    assert undecodable_post(environ, LIMIT) is None
    assert environ["wsgi.input"] is body and body.reads == 0


@pytest.mark.parametrize(
    "payload",
    [b"4hello", b"4a\x1e4b\x1e3", b"bAQID", "4caf\u00e9 \u2603".encode(), b"4" + b"[" * 50],
    ids=["message", "three packets", "base64", "UTF-8", "shallow JSON"],
)
def test_a_good_payload_passes_and_python_engineio_reads_the_same_bytes(payload: bytes) -> None:
    environ = post_environ(payload)
    assert undecodable_post(environ, LIMIT) is None
    assert environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])) == payload


def test_a_missing_content_length_reads_an_empty_body() -> None:
    environ = {"REQUEST_METHOD": "POST", "wsgi.input": ReadOnce(b"")}
    assert undecodable_post(environ, LIMIT) is None
    assert environ["wsgi.input"].read() == b""


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"4\x1e", "ValueError"),
        (b"\x1e", "ValueError"),
        (b"bA", "Error"),
        (b"4[" + b"[" * 5000, "RecursionError"),
        (b"\x1e".join([b"4"] * 17), "ValueError"),
        (b"\xff\xfe", "UnicodeDecodeError"),
    ],
    ids=["empty packet", "empty payload", "bad base64", "deep JSON", "too many", "not UTF-8"],
)
def test_an_undecodable_payload_gets_a_reason(payload: bytes, error: str) -> None:
    environ = post_environ(payload)
    assert undecodable_post(environ, LIMIT) == f"not an Engine.IO payload ({error})"


def test_a_refusal_is_logged_without_what_the_client_sent(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "malformed_log", RateLimitedLog(polling.logger))
    undecodable_post(post_environ(b"bAsecret"), LIMIT)
    (record,) = [r for r in caplog.records if r.name == polling.logger.name]
    assert record.levelname == "WARNING"
    assert "not an Engine.IO payload (Error)" in record.getMessage()
    assert "secret" not in record.getMessage()


def post(app: Any, sid: str, payload: bytes) -> str:
    """POST ``payload`` to the session through ``app``'s WSGI entry point; the status."""
    environ = {
        **post_environ(payload),
        "QUERY_STRING": f"EIO=4&transport=polling&sid={sid}",
        "PATH_INFO": "/socket.io/",
    }
    statuses: list[str] = []
    app.handle_request(environ, lambda status, *rest: statuses.append(status))
    return statuses[0]


@pytest.mark.django_db
def test_no_nesting_gets_past_the_check_to_python_engineios_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PONG (harmless to the session) nested ever deeper, up to the recursion limit.

    The check decoded a few frames shallower than python-engineio, and JSON's nesting
    counts against the recursion limit: at one depth (945 here) a payload passed the
    check and reached python-engineio's 20-line traceback, again at every request.
    """
    server = GuardedServer(async_mode="threading")
    try:
        sid = open_polling_session(server)
        caplog.set_level(logging.ERROR, logger=server.eio.logger.name)
        reached: dict[int, str] = {}
        for depth in range(1, sys.getrecursionlimit() + 1):
            status = post(server, sid, b"3" + b"[" * depth)
            if "post request handler error" in caplog.text:
                reached[depth] = status
                break
        assert reached == {}, f"nested {list(reached)} deep: {list(reached.values())}"
    finally:
        server.shutdown()
