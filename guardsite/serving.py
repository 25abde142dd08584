"""Serve a WSGI app with eventlet on one or more addresses, until a signal stops it.

This module assumes ``eventlet.monkey_patch()`` already ran (see manage.py).
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import re
import resource
import signal
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import eventlet
import eventlet.event
import eventlet.wsgi

logger = logging.getLogger(__name__)
ACCESS_LOGGER = logging.getLogger("eventlet.wsgi.server")
# How long a connection from a flooding address is held before it is closed unread.
FLOOD_HOLD_SECONDS = 1.0

_ADDRPORT = re.compile(
    r"(?:(?P<scheme>https?)://)?"
    r"(?:(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]/]+)):)?(?P<port>\d{1,5})/?"
)


class AddressError(ValueError):
    """An ADDRPORT argument that cannot be served."""


@dataclass(frozen=True)
class Endpoint:
    """One address to listen on."""

    host: str
    port: int
    tls: bool = False

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def url(self) -> str:
        """The URL people should open; loopback addresses are shown as localhost."""
        scheme = "https" if self.tls else "http"
        host = self.host
        try:
            if ipaddress.ip_address(host).is_loopback:
                host = "localhost"
        except ValueError:
            pass
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}/"


def parse_addrport(text: str, default_host: str = "127.0.0.1", tls: bool = False) -> Endpoint:
    """Parse ``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT``, optionally after ``https://``."""
    match = _ADDRPORT.fullmatch(text.strip())
    if not match:
        raise AddressError(f"{text!r} is not [https://]PORT, HOST:PORT or [IPV6]:PORT")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise AddressError(f"{text!r}: the port must be from 1 to 65535")
    if match["ipv6"]:
        try:
            host = ipaddress.IPv6Address(match["ipv6"]).compressed
        except ValueError:
            raise AddressError(f"{text!r}: {match['ipv6']!r} is not an IPv6 address") from None
    else:
        host = match["host"] or default_host
    return Endpoint(host, port, tls or match["scheme"] == "https")


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft limit on open files towards ``wanted`` (each socket is one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def listen(
    endpoints: Sequence[Endpoint], backlog: int, tls_context: ssl.SSLContext | None = None
) -> list[Any]:
    """Bind every endpoint before serving any, so a busy port fails at once.

    Accepted sockets send small frames at once (TCP_NODELAY). TLS listeners hand
    each accepted socket over without a handshake; the
    handshake runs in that connection's own green thread, so a slow client
    cannot stall the accept loop.
    """
    sockets = []
    try:
        for endpoint in endpoints:
            try:
                sockets.append(
                    eventlet.listen(
                        (endpoint.host, endpoint.port),
                        family=endpoint.family,
                        backlog=backlog,
                        reuse_port=False,
                    )
                )
            except OSError as exc:
                where = f"{endpoint.host}:{endpoint.port}"
                raise AddressError(f"cannot listen on {where}: {exc.strerror}") from None
            # Socket.IO writes many small frames back to back; with Nagle's algorithm
            # each can wait for the peer's delayed ACK (~40 ms). Accepted sockets
            # inherit this option from the listener.
            sockets[-1].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.tls:
                if tls_context is None:
                    raise AddressError(f"{endpoint.url()} needs a TLS certificate")
                sockets[-1] = tls_context.wrap_socket(
                    sockets[-1], server_side=True, do_handshake_on_connect=False
                )
    except AddressError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


# Why a TLS handshake fails, in the words of a newcomer who has just started the demo.
HANDSHAKE_HINTS = {
    "TLSV1_ALERT_UNKNOWN_CA": "the client does not trust this certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the client does not trust this certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the client rejected this certificate",
    "HTTP_REQUEST": "plain HTTP sent to an HTTPS address",
    "WRONG_VERSION_NUMBER": "not TLS, or a TLS version below 1.2",
    "UNSUPPORTED_PROTOCOL": "a TLS version below 1.2",
}


def protocol_contract_breaches() -> list[str]:
    """What ``Protocol`` relies on in eventlet's ``HttpProtocol`` and no longer finds."""
    base = eventlet.wsgi.HttpProtocol
    breaches = []
    for name in ("handle", "_read_request_line"):
        method = getattr(base, name, None)
        if not callable(method):
            breaches.append(f"{name}() is gone")
        elif list(inspect.signature(method).parameters) != ["self"]:
            breaches.append(f"{name}() takes {list(inspect.signature(method).parameters)}")
    return breaches


class Protocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP protocol, with a failed TLS handshake told in one line.

    The TLS handshake runs on the first read of the request line; eventlet lets
    its ``SSLError`` escape to the hub, which prints a 30-line traceback and
    "Removing descriptor" for every browser that does not trust the
    development certificate yet. Here it is one INFO line with the client's
    address and the reason, at INFO for a client's routine distrust and at
    WARNING for any other TLS reason; every other error stays as loud as before.
    """

    _read_a_line = False
    # Addresses whose connections are dropped unread (a flood); set per server.
    is_flooding: Callable[[str], bool] | None = None

    def handle(self) -> None:
        shed = type(self).is_flooding
        if shed is not None and shed(self.client_address[0]):
            # Held a moment, then closed unread: a flooder that reconnects at once
            # would otherwise cost an accept and a green thread thousands of times
            # a second; held, it waits, and a sleeping green thread costs nothing.
            eventlet.sleep(FLOOD_HOLD_SECONDS)
            self.close_connection = 1
            return
        super().handle()

    def _read_request_line(self) -> bytes | str:
        try:
            line = super()._read_request_line()
        except ssl.SSLError as error:
            reason = error.reason or type(error).__name__
            hint = HANDSHAKE_HINTS.get(reason)
            what = "TLS error on a connection" if self._read_a_line else "TLS handshake"
            # A client's distrust is routine; anything else, the operator should see.
            level = logging.INFO if hint else logging.WARNING
            shown = f"{reason} ({hint})" if hint else reason
            logger.log(level, "%s from %s failed: %s", what, self.client_address[0], shown)
            self.close_connection = 1
            return ""
        self._read_a_line = True
        return line


def logging_errors(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app, with its unhandled errors logged.

    eventlet.wsgi answers them with HTTP 500 but writes the traceback only to
    its access log, which runsocket keeps off unless asked: they went unseen.
    """

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return app(environ, start_response)
        except Exception:
            method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            logger.exception("Unhandled error answering %s %r", method, path)
            raise

    return serve


def serve_until_stopped(
    app: Callable[..., Any],
    listeners: Sequence[Any],
    *,
    max_connections: int,
    access_log: bool,
    on_ready: Callable[[], None],
    on_stop: Callable[[str], None],
    socket_timeout: float | None = None,
    is_flooding: Callable[[str], bool] | None = None,
) -> None:
    """Serve on every listener from one connection pool until SIGINT or SIGTERM.

    ``on_ready`` runs once the signal handlers are in place, so a signal sent
    after it has announced readiness always stops the server cleanly.
    """
    stop = eventlet.event.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        if not stop.ready():
            stop.send(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    pool = eventlet.GreenPool(max_connections)
    protocol = type("Protocol", (Protocol,), {"is_flooding": staticmethod(is_flooding)})
    servers = [
        eventlet.spawn(
            eventlet.wsgi.server,
            listener,
            logging_errors(app),
            custom_pool=pool,
            log_output=access_log,
            # Through logging, whose formatters escape what clients wrote: written
            # to stderr, the request line and X-Forwarded-For went out raw.
            log=ACCESS_LOGGER,
            debug=False,  # never send tracebacks to clients
            # A connection that sends nothing (no TLS ClientHello, half a request
            # line, nothing between requests) is closed after socket_timeout: it
            # held a green thread and a descriptor for good. A healthy WebSocket
            # answers Engine.IO's ping every 25 s, so it never waits that long.
            keepalive=socket_timeout or True,
            socket_timeout=socket_timeout,
            protocol=protocol,
        )
        for listener in listeners
    ]
    try:
        on_ready()
        on_stop(stop.wait())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for server in servers:
            server.kill()
        for listener in listeners:
            listener.close()
