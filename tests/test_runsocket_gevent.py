"""runsocket in gevent mode (``GUARDSITE_SOCKETIO_ASYNC_MODE=gevent``): the live tests of
the guard, the gate, the flood drop and the access log, collected from their own files
with gevent servers, and what only gevent's server needed (test_serving_gevent.py has
the server's hardening and TLS).

Every server this module starts, shared or its own, is a gevent runsocket:
``tests.gevent_mode``'s fixtures take the place of conftest's for the tests
collected here.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.live import ROOT, LiveServer, wait_until
from tests import (
    gevent_mode,
    test_live_gate,
    test_live_guard,
    test_log_injection,
    test_ratelimit,
    test_websocket,
)
from tests.clients import polling_handshake, try_connect
from tests.conftest import ALLOWED
from tests.gevent_mode import collect_live_tests

# conftest's fixtures, in gevent mode, for every test below.
start_server = gevent_mode.start_server
socket_server = gevent_mode.socket_server
dev_ca = gevent_mode.dev_ca


collect_live_tests(test_live_guard, globals())
collect_live_tests(test_live_gate, globals())
# The whole-message cap and the pre-connect budget: python-engineio gave gevent's
# WebSockets (simple-websocket) neither (whitelist.engine.wsproto_websocket).
collect_live_tests(test_websocket, globals())
# Flooding addresses dropped unread: the server's part. Whose address a handshake counts
# against is the gate's, the same whatever serves it.
collect_live_tests(
    test_ratelimit,
    globals(),
    skip=(
        "test_a_direct_client_rotating_x_forwarded_for_is_limited_by_its_own_address",
        "test_a_direct_client_cannot_spend_a_victims_handshakes",
        "test_a_trusted_proxys_x_forwarded_for_names_the_client",
    ),
)
collect_live_tests(
    test_log_injection,
    globals(),
    skip=(
        "test_gunicorns_own_log_lines_show_client_headers_escaped",
        "test_client_values_reach_the_log_escaped",  # in plain format below
    ),
)


def test_client_values_reach_the_access_log_escaped(
    start_server: Callable[..., LiveServer],
) -> None:
    """test_log_injection's test in plain format: the access log is the server's, the JSON
    formatter the same whatever serves."""
    test_log_injection.test_client_values_reach_the_log_escaped(start_server, "plain")


def test_banner_names_gevent(socket_server: LiveServer) -> None:
    import gevent

    assert f", gevent {gevent.__version__}" in socket_server.log().splitlines()[0]


def test_a_closed_websocket_leaves_nothing_in_the_log(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """gevent read a closed WebSocket's last frame as the next request line, and logged its
    raw bytes ("Invalid HTTP method")."""
    for _ in range(3):
        outcome, client = try_connect(socket_server.url, origin=ALLOWED, transport="websocket")
        assert outcome.welcome is not None
    outcome, _ = try_connect(socket_server.url, origin="https://evil.test", transport="websocket")
    assert outcome.error is not None
    # A request after them all: its answer says the server is past the closes.
    session = requests.Session()
    session.trust_env = False
    assert session.get(socket_server.url + "/healthz", timeout=10).status_code == 200
    log = shared_log()
    assert "malformed request" not in log
    assert "Invalid HTTP method" not in log and "Expected GET" not in log


@pytest.fixture
def raw_connection(socket_server: LiveServer) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", socket_server.ports[0]), timeout=10) as raw:
        yield raw


def answer_to(raw: socket.socket, head: bytes) -> bytes:
    raw.sendall(head)
    return answer_head(raw)


def answer_head(raw: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := raw.recv(4096)):
        answer += chunk
    return answer


def test_a_malformed_request_line_is_refused_in_one_escaped_line(
    raw_connection: socket.socket, shared_log: Callable[[], str]
) -> None:
    answer = answer_to(raw_connection, b"GAR BAGE\x1b[31m\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert wait_until(lambda: "Refused a malformed request from 127.0.0.1" in shared_log())
    log = shared_log()
    assert "\x1b" not in log and "\\x1b[31m" in log
    assert "Traceback" not in log


def test_more_headers_than_the_parser_takes_is_a_bad_request_not_a_traceback(
    raw_connection: socket.socket, shared_log: Callable[[], str]
) -> None:
    """http.client refuses a head of over 100 headers; gevent printed that as a traceback."""
    headers = b"".join(b"X-%d: 1\r\n" % number for number in range(150))
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n"
    assert answer_to(raw_connection, head).startswith(b"HTTP/1.1 400 ")
    assert wait_until(lambda: "request head refused (HTTPException)" in shared_log())
    assert "Traceback" not in shared_log()


def test_a_changed_gevent_server_is_a_named_check_error(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import gevent.pywsgi

    from guardsite.checks import check_gevent_handler

    settings.GUARDSITE_SOCKETIO_ASYNC_MODE = "gevent"
    assert check_gevent_handler() == []
    monkeypatch.delattr(gevent.pywsgi.WSGIHandler, "read_requestline")
    monkeypatch.setattr(gevent.pywsgi.WSGIServer, "handle", lambda self, sock: None)
    errors = check_gevent_handler()
    assert [error.id for error in errors] == ["guardsite.E005"] * 2
    assert {error.msg for error in errors} == {
        "gevent.pywsgi changed: WSGIServer.handle() takes ['sock'].",
        "gevent.pywsgi changed: WSGIHandler.read_requestline() is gone.",
    }
    settings.GUARDSITE_SOCKETIO_ASYNC_MODE = "eventlet"
    assert check_gevent_handler() == []  # eventlet's runsocket never loads gevent's server


def test_a_post_cut_short_is_a_bad_request_not_a_traceback(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """gevent's input raises when the body ends before its Content-Length: it was a 500."""
    sid = polling_handshake(socket_server.url, ALLOWED)
    with socket.create_connection(("127.0.0.1", socket_server.ports[0]), timeout=10) as raw:
        head = (
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: localhost\r\nOrigin: {ALLOWED}\r\nContent-Length: 100\r\n\r\n40"
        )
        raw.sendall(head.encode())
        raw.shutdown(socket.SHUT_WR)
        assert answer_head(raw).startswith(b"HTTP/1.1 400 ")
    assert "Unhandled error" not in shared_log()


def test_a_client_gone_before_its_bad_request_is_answered_leaves_no_traceback(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """gevent answers a request line over 8 KiB with 414, unguarded: a reset client's
    broken pipe reached the hub as a traceback."""
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", socket_server.ports[0]), timeout=10) as raw:
            raw.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")
            # Reset at the close, with the line sent: the answer finds no one.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with socket.create_connection(("127.0.0.1", socket_server.ports[0]), timeout=10) as raw:
        answer = answer_to(raw, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert "Traceback" not in shared_log() and "BrokenPipeError" not in shared_log()


def test_an_unhandled_error_is_logged_once_and_answered_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from guardsite.serving.gevent_server import answering_errors

    def failing(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("a bug")

    answered: list[str] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        answered.append(status)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}
    with caplog.at_level("ERROR", logger="guardsite.serving"):
        body = answering_errors(failing)(environ, start_response)
    assert answered == ["500 Internal Server Error"] and body == [b"Internal Server Error"]
    [record] = caplog.records
    assert record.getMessage() == "Unhandled error answering GET '/x'"
    assert record.exc_info and record.exc_info[0] is RuntimeError


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), False),
        (BrokenPipeError(32, "Broken pipe"), False),
        (RuntimeError("a bug in a result's iteration"), True),
    ],
    ids=["TLS client gone", "client gone", "a bug"],
)
def test_an_error_while_answering_is_quiet_if_the_client_left_and_logged_once_if_not(
    caplog: pytest.LogCaptureFixture, error: Exception, logged: bool
) -> None:
    """gevent printed a traceback through its hub for any write error but EPIPE and
    ECONNRESET: over TLS, a client gone during a long-poll's answer (the seed demo's
    revocation in Chromium) was a traceback."""
    from guardsite.serving.gevent_server import Handler

    handler = Handler.__new__(Handler)  # the method reads only the request's environ
    handler.environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/socket.io/"}
    with caplog.at_level("DEBUG", logger="guardsite.serving"):
        handler.handle_error(type(error), error, error.__traceback__)
    assert handler.close_connection
    assert [r.getMessage() for r in caplog.records] == (
        ["Unhandled error answering GET '/socket.io/'"] if logged else []
    )


def test_a_head_cut_short_by_a_reset_leaves_no_traceback(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """http.client's header reading raised OSError at a reset: gevent printed a traceback."""
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", socket_server.ports[0]), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Half: ")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with socket.create_connection(("127.0.0.1", socket_server.ports[0]), timeout=10) as raw:
        answer = answer_to(raw, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert "Traceback" not in shared_log()


@pytest.mark.live
def test_gevent_mode_without_gevent_says_what_to_install(tmp_path: Path) -> None:
    """It was an ImportError's traceback from manage.py."""
    (tmp_path / "gevent.py").write_text('raise ImportError("No module named gevent")\n')
    finished = subprocess.run(
        [sys.executable, "manage.py", "runsocket", "127.0.0.1:0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "GUARDSITE_SOCKETIO_ASYNC_MODE": "gevent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "GUARDSITE_SOCKETIO_ASYNC_MODE=gevent needs gevent" in finished.stderr
    assert "Traceback" not in finished.stderr
