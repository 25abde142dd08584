"""runsocket's address parsing and start-up errors."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from guardsite.serving.addresses import AddressError, Endpoint, parse_addrport
from harness.live import LiveServer, manage, wait_until
from tests.clients import try_connect
from tests.conftest import ALLOWED
from tests.garbage import collector_off
from tests.slowloris import Slowloris, request, visit


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


def test_runsocket_refuses_the_threading_mode_and_names_gthread(migrated_template: Path) -> None:
    result = manage(migrated_template, "runsocket", GUARDSITE_SOCKETIO_ASYNC_MODE="threading")
    assert result.returncode == 1
    assert "runsocket serves eventlet or gevent, not threading" in result.stderr
    assert "GUARDSITE_WORKER=gthread" in result.stderr
    assert "Traceback" not in result.stderr


def test_banner_names_the_rules_and_the_addresses(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("http://localhost:5000")
    log = server.log()
    assert "Allowlist: 1 enabled rule" in log
    assert f"Serving http://localhost:{server.ports[0]}/" in log
    assert "Capacity: 10000 connections" in log


def test_favicon_requests_find_an_icon(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """Browsers ask every site for /favicon.ico; a 404 there was noise in the log."""
    session = requests.Session()
    session.trust_env = False
    answer = session.get(socket_server.url + "/favicon.ico", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/svg+xml")
    assert answer.history and answer.history[0].status_code == 302
    assert "Not Found: /favicon.ico" not in shared_log()


def test_a_failed_tls_handshake_is_one_line(
    socket_server: LiveServer, shared_log: Callable[[], str]
) -> None:
    """A client that does not trust the development certificate, and plain HTTP to TLS."""
    port = socket_server.tls_ports[0]
    distrusting = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        distrusting.wrap_socket(raw, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # Closed either way; gevent's server closes with the request unread (a reset).
        with contextlib.suppress(ConnectionResetError):
            raw.recv(1024)
    plain_http = "HTTP_REQUEST (plain HTTP sent to an HTTPS address)"
    assert wait_until(lambda: plain_http in shared_log())
    log = shared_log()
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


def test_a_served_connection_is_freed_without_the_cyclic_garbage_collector() -> None:
    """eventlet's environ holds a closure over the protocol (``eventlet.set_idle``): while
    the protocol kept its last environ, every connection was a reference cycle."""
    import eventlet.wsgi

    from guardsite.serving.eventlet_server import Protocol

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        client_end.settimeout(5)
        client_end.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        server = eventlet.wsgi.Server(server_end, ("127.0.0.1", 1), app, log_output=False)
        with collector_off():
            protocol = Protocol([("127.0.0.1", 1), server_end, eventlet.wsgi.STATE_IDLE], server)
            assert client_end.recv(100).startswith(b"HTTP/1.1 200 OK")
            freed = weakref.ref(protocol)
            del protocol
            assert freed() is None


# A small server for the slowloris test: 100 slots, 20 of them per address, 3 s per head.
HEAD_TIMEOUT = 3.0
PER_ADDRESS = 20


def test_slowloris_from_one_address_neither_holds_the_pool_nor_keeps_its_connections(
    start_server: Callable[..., LiveServer],
) -> None:
    """200 connections sending a header line a second held every slot; no visitor got in."""
    server = start_server(
        ALLOWED,
        GUARDSITE_MAX_CONNECTIONS="100",
        GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
        GUARDSITE_REQUEST_HEAD_TIMEOUT=str(HEAD_TIMEOUT),
    )
    port = server.ports[0]
    visits: list[float] = []
    failures: list[str] = []
    with Slowloris(port, source="127.0.0.1", count=200, pace=1.0, limit=30) as attack:
        # The attack has its 200 connections open (or refused) before the first visit.
        assert wait_until(lambda: len(attack.connections) >= 200, timeout=10)
        ends = time.monotonic() + 3 * HEAD_TIMEOUT  # through several head deadlines
        while time.monotonic() < ends and len(visits) + len(failures) < 40:
            try:
                visits.append(visit(port, "127.0.0.2", timeout=3))
            except (OSError, AssertionError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                break  # a visitor shut out once is the finding; stop early
            time.sleep(0.2)  # a visitor's pace, not a wait for an outcome
        held = [c.lifetime for c in attack.connections if c.lifetime and c.lifetime > 1]
        opened = len(attack.connections)
    assert not failures, f"visitor from 127.0.0.2 shut out after {len(visits)} visits: {failures}"
    slowest = max(visits)
    assert slowest < 2, f"a visit took {slowest:.2f} s under the attack"
    # Held connections (within the cap) are closed by the head deadline, none later.
    assert held, f"no attacking connection was held and then closed ({opened} opened)"
    longest = max(held)
    assert HEAD_TIMEOUT - 0.5 <= longest <= HEAD_TIMEOUT + 2, f"held {longest:.1f} s at most"
    log = server.log()
    assert "no complete request head within 3" in log
    assert f"over {PER_ADDRESS} connections from 127.0.0.1" in log


@pytest.fixture(scope="module")
def capped_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """3 connections per address, 3 s per request head; 127.0.0.3 is a trusted proxy."""
    return start_server(
        ALLOWED,
        tls_ports=1,
        GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS="3",
        GUARDSITE_REQUEST_HEAD_TIMEOUT="3",
        WHITELIST_TRUSTED_PROXIES="127.0.0.3",
        WHITELIST_PROXY_COUNT="1",
    )


def half_heads(port: int, source: str, count: int) -> list[socket.socket]:
    """``count`` connections from ``source``, each with half a request head sent."""
    opened = []
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        opened.append(raw)
    return opened


def closed_within(raw: socket.socket, seconds: float) -> bool:
    raw.settimeout(seconds)
    try:
        return closed_by_server(raw)
    except TimeoutError:
        return False


def answered(raw: socket.socket) -> bool:
    """End the half-sent head: does the server answer it (so it held the connection open)?"""
    raw.settimeout(10)
    try:
        raw.sendall(b"\r\n")
        return raw.recv(1024).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def test_connections_over_the_cap_are_closed_at_once_but_a_trusted_proxys_are_not(
    capped_server: LiveServer,
) -> None:
    port = capped_server.ports[0]
    direct = half_heads(port, "127.0.0.2", 6)
    proxied = half_heads(port, "127.0.0.3", 6)
    try:
        # Beyond the cap, closed at once, unread; within it, and from the trusted
        # proxy, held open: their heads, completed, are answered.
        assert [closed_within(raw, 2) for raw in direct[3:]] == [True] * 3
        assert [answered(raw) for raw in direct[:3] + proxied] == [True] * 9
        # Closed connections free their places: the address may connect again.
        for raw in direct[:3]:
            raw.close()
        status, _ = request(port, "127.0.0.2", "GET", "/")
        assert status == 200
    finally:
        for raw in direct + proxied:
            raw.close()
    assert "over 3 connections from 127.0.0.2" in capped_server.log()
    assert "connections from 127.0.0.3" not in capped_server.log()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_keep_alive_waits_for_the_next_request_then_gives_it_the_head_deadline(
    capped_server: LiveServer, tls: bool
) -> None:
    """The deadline starts at a later request's first byte, not while the connection idles."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        port = capped_server.tls_ports[0]
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=context, source_address=("127.0.0.4", 0)
        )
    else:
        port = capped_server.ports[0]
        connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=10, source_address=("127.0.0.4", 0)
        )
    with contextlib.closing(connection):
        for _ in range(2):
            connection.request("GET", "/healthz")
            assert connection.getresponse().read().startswith(b'{"status"')
            first = connection.sock
            time.sleep(3.5)  # idle longer than the head deadline (3 s), on purpose
        assert connection.sock is first  # one connection throughout
        # A later request whose head never completes is closed by the deadline.
        started = time.monotonic()
        connection.sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        assert closed_within(connection.sock, 10)
        took = time.monotonic() - started
        # Not counted from the idle connection's last request (then it would close at once).
        assert took >= 2, f"closed after {took:.1f} s, for a 3 s head deadline"


def test_a_changed_header_reader_is_a_named_check_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Protocol reads a short head at once from the stream under eventlet's header reader."""
    import eventlet.wsgi

    from guardsite.checks import check_eventlet_protocol

    class Renamed:
        def __init__(self, stream: Any) -> None:
            self.stream = stream

    monkeypatch.setattr(eventlet.wsgi, "FileObjectForHeaders", Renamed)
    errors = check_eventlet_protocol()
    assert [error.id for error in errors] == ["guardsite.E003"]
    assert "FileObjectForHeaders(rfile) no longer keeps rfile as .fp" in errors[0].msg


def test_a_changed_request_head_reading_is_a_named_check_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import eventlet.wsgi

    from guardsite.checks import check_eventlet_protocol

    monkeypatch.setattr(eventlet.wsgi.HttpProtocol, "parse_request", lambda self, strict: True)
    errors = check_eventlet_protocol()
    assert [error.id for error in errors] == ["guardsite.E003"]
    assert "parse_request() takes ['self', 'strict']" in errors[0].msg


@pytest.mark.parametrize(
    ("settings", "ids"),
    [
        ({}, []),
        ({"GUARDSITE_REQUEST_HEAD_TIMEOUT": 0}, ["guardsite.E004"]),
        ({"GUARDSITE_REQUEST_HEAD_TIMEOUT": "20"}, ["guardsite.E004"]),
        ({"GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS": 0}, ["guardsite.E004"]),
        ({"GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS": 2.5}, ["guardsite.E004"]),
        ({"GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS": 10_000}, ["guardsite.W002"]),
    ],
)
def test_connection_limit_settings_are_checked(settings: dict[str, object], ids: list[str]) -> None:
    from django.test import override_settings

    from guardsite.checks import check_connection_limits

    with override_settings(**settings):
        assert [message.id for message in check_connection_limits()] == ids
