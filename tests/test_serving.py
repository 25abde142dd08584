"""runsocket's address parsing and start-up errors."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from guardsite.serving import AddressError, Endpoint, parse_addrport
from harness.live import LiveServer, manage, wait_until
from tests.clients import try_connect


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("8000", Endpoint("127.0.0.1", 8000)),
        ("0.0.0.0:5000", Endpoint("0.0.0.0", 5000)),
        ("localhost:5001", Endpoint("localhost", 5001)),
        ("[::1]:5443", Endpoint("::1", 5443)),
        ("[0:0::1]:80", Endpoint("::1", 80)),
    ],
)
def test_addrports_are_parsed(text: str, endpoint: Endpoint) -> None:
    assert parse_addrport(text) == endpoint


@pytest.mark.parametrize("text", ["", "host:", "host:port", "70000", "0", "[::1]", "[nope]:80"])
def test_bad_addrports_are_rejected(text: str) -> None:
    with pytest.raises(AddressError):
        parse_addrport(text)


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (Endpoint("127.0.0.1", 5000), "http://localhost:5000/"),
        (Endpoint("::1", 5000), "http://localhost:5000/"),
        (Endpoint("192.0.2.7", 80), "http://192.0.2.7:80/"),
        (Endpoint("2001:db8::1", 80), "http://[2001:db8::1]:80/"),
    ],
)
def test_banner_urls_use_localhost_for_loopback(endpoint: Endpoint, url: str) -> None:
    assert endpoint.url() == url


def test_busy_port_is_one_clear_error(migrated_template: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = manage(migrated_template, "runsocket", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"CommandError: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_banner_names_the_rules_and_the_addresses(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("http://localhost:5000")
    log = server.log()
    assert "Allowlist: 1 enabled rule" in log
    assert f"Serving http://localhost:{server.ports[0]}/" in log
    assert "Capacity: 10000 connections" in log


def test_favicon_requests_find_an_icon(socket_server: LiveServer) -> None:
    """Browsers ask every site for /favicon.ico; a 404 there was noise in the log."""
    session = requests.Session()
    session.trust_env = False
    answer = session.get(socket_server.url + "/favicon.ico", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/svg+xml")
    assert answer.history and answer.history[0].status_code == 302
    assert "Not Found: /favicon.ico" not in socket_server.log()


def test_a_failed_tls_handshake_is_one_line(socket_server: LiveServer) -> None:
    """A client that does not trust the development certificate, and plain HTTP to TLS."""
    port = socket_server.tls_ports[0]
    start = len(socket_server.log())  # what the shared server logged before is other tests'
    distrusting = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        distrusting.wrap_socket(raw, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.recv(1024)
    plain_http = "HTTP_REQUEST (plain HTTP sent to an HTTPS address)"
    assert wait_until(lambda: plain_http in socket_server.log()[start:])
    log = socket_server.log()[start:]
    assert "failed: TLSV1_ALERT_UNKNOWN_CA (the client does not trust this certificate)" in log
    assert "Traceback" not in log and "Removing descriptor" not in log


def closed_by_server(raw: socket.socket) -> bool:
    """Wait (bounded by the socket's timeout) for the server to hang up."""
    try:
        return raw.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_silent_connections_are_closed_after_the_socket_timeout(
    start_server: Callable[..., LiveServer],
) -> None:
    """Idle sockets, half a request line, no TLS ClientHello: each held a green thread for good."""
    server = start_server(tls_ports=1, GUARDSITE_SOCKET_TIMEOUT="2")
    attempts = {
        "nothing": (server.ports[0], b""),
        "half a request line": (server.ports[0], b"GET /socket.io/?EIO=4&transport=poll"),
        "no TLS ClientHello": (server.tls_ports[0], b""),
    }
    for what, (port, sent) in attempts.items():
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.sendall(sent)
            assert closed_by_server(raw), what
    outcome, _ = try_connect(server.url, origin="http://localhost", transport="websocket")
    assert outcome.error is not None  # and the server still answers


def test_a_changed_eventlet_protocol_is_a_named_check_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import eventlet.wsgi

    from guardsite.checks import check_eventlet_protocol

    assert check_eventlet_protocol() == []
    monkeypatch.delattr(eventlet.wsgi.HttpProtocol, "_read_request_line")
    errors = check_eventlet_protocol()
    assert [error.id for error in errors] == ["guardsite.E003"]
    assert "_read_request_line() is gone" in errors[0].msg
