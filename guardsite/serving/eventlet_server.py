"""Serve a WSGI app with eventlet on one or more addresses, until a signal stops it.

This module assumes ``eventlet.monkey_patch()`` already ran (see manage.py).
"""

from __future__ import annotations

import inspect
import io
import logging
import signal
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import eventlet
import eventlet.event
import eventlet.wsgi

from guardsite.peers import EXEMPT, PeerCounter
from guardsite.request_heads import parse_request_head
from guardsite.serving.addresses import Endpoint
from guardsite.serving.closing import (
    FLOOD_HOLD_SECONDS,
    ConnectionPolicy,
    log_over_cap,
    log_slow_head,
    log_tls_failure,
)
from guardsite.serving.head_deadlines import HeadDeadlines, SlowHead
from whitelist.gate.origin_gate import HEAD_BYTES

logger = logging.getLogger(__name__)
ACCESS_LOGGER = logging.getLogger("eventlet.wsgi.server")


def wrap_tls(listeners: Sequence[Any], endpoints: Sequence[Endpoint], context: Any) -> list[Any]:
    """The listeners, those of TLS endpoints wrapped to hand accepted sockets over unshaken.

    The handshake runs in the connection's own green thread (``Protocol``), so
    a slow client cannot stall the accept loop.
    """
    wrapped = []
    for listener, endpoint in zip(listeners, endpoints, strict=True):
        if endpoint.tls:
            listener = context.wrap_socket(
                listener, server_side=True, do_handshake_on_connect=False
            )
        wrapped.append(listener)
    return wrapped


def protocol_contract_breaches() -> list[str]:
    """What ``Protocol`` relies on in eventlet's ``HttpProtocol`` and no longer finds.

    ``handle`` runs the connection; each request's head is read by
    ``_read_request_line`` and then ``parse_request`` (the standard library's), and
    ``get_environ`` makes its environ.
    """
    base = eventlet.wsgi.HttpProtocol
    breaches = []
    for name in ("handle", "_read_request_line", "parse_request", "get_environ"):
        method = getattr(base, name, None)
        if not callable(method):
            breaches.append(f"{name}() is gone")
        elif list(inspect.signature(method).parameters) != ["self"]:
            breaches.append(f"{name}() takes {list(inspect.signature(method).parameters)}")
    # parse_request reads the head through FileObjectForHeaders(rfile), which refuses a
    # line of MAX_HEADER_LINE bytes or more: a head shorter than that is read from rfile.
    wrapper = getattr(eventlet.wsgi, "FileObjectForHeaders", None)
    stream = io.BytesIO()
    if not callable(wrapper) or getattr(wrapper(stream), "fp", None) is not stream:
        breaches.append("FileObjectForHeaders(rfile) no longer keeps rfile as .fp")
    if not isinstance(getattr(eventlet.wsgi, "MAX_HEADER_LINE", None), int):
        breaches.append("MAX_HEADER_LINE is gone")
    return breaches


class Protocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP protocol, with a cap per address, a deadline per request head,
    and a failed TLS handshake told in one line.

    Cap and deadline: the pool has one green thread per connection, and a
    client that sends a request head a line at a time (slowloris) held its
    slot as long as it liked; 200 such connections shut every visitor out.
    Now a peer may hold ``peers.limit`` connections (more are closed unread),
    and each request head must be complete ``head_deadlines.seconds`` after it
    started: at the connection's accept for the first request (the TLS
    handshake included), at its first byte for each later one.

    TLS: the handshake runs on the first read of the request line; eventlet lets
    its ``SSLError`` escape to the hub, which prints a 30-line traceback and
    "Removing descriptor" for every browser that does not trust the
    development certificate yet. Here it is one INFO line with the client's
    address and the reason, at INFO for a client's routine distrust and at
    WARNING for any other TLS reason; every other error stays as loud as before.
    """

    _read_a_line = False
    # The size of the request's head, when request_heads read it (else None).
    head_bytes: int | None = None
    # Set per server (serve_until_stopped):
    # addresses whose connections are dropped unread (a flood);
    is_flooding: Callable[[str], bool] | None = None
    # open connections per peer address, and the cap;
    peers: PeerCounter | None = None
    # the deadline of each request head (None: no deadline), and the seconds allowed for
    # the next request to begin.
    head_deadlines: HeadDeadlines | None = None
    idle_timeout: float | None = None

    def handle(self) -> None:
        peer = self.client_address[0]
        peers = type(self).peers
        key = EXEMPT if peers is None else peers.enter(peer)
        if key is None:
            # Closed at once and unread: held, it would hold the very slot the cap saves.
            log_over_cap(peer, peers.limit if peers else 0)
            self.close_connection = 1
            return
        try:
            self._handle(peer)
        finally:
            self._stop_head_deadline()
            if peers is not None:
                peers.leave(key)
            # eventlet's environ holds a closure over this protocol (eventlet.set_idle):
            # kept here, it made every connection a reference cycle, left with its socket,
            # buffers and headers to the cyclic garbage collector (5 % of a connect).
            self.environ = None

    def _handle(self, peer: str) -> None:
        shed = type(self).is_flooding
        if shed is not None and shed(peer):
            # Held a moment, then closed unread (closing.FLOOD_HOLD_SECONDS).
            eventlet.sleep(FLOOD_HOLD_SECONDS)
            self.close_connection = 1
            return
        try:
            super().handle()
        except SlowHead:
            deadlines = type(self).head_deadlines
            log_slow_head(peer, deadlines.seconds if deadlines is not None else None)
            self.close_connection = 1

    def _read_request_line(self) -> bytes | str:
        if self._read_a_line and not self._next_request_began():
            self.close_connection = 1
            return ""
        self._start_head_deadline()
        try:
            line = super()._read_request_line()
        except ssl.SSLError as error:
            log_tls_failure(self.client_address[0], error, handshake=not self._read_a_line)
            self.close_connection = 1
            return ""
        self._read_a_line = True
        return line

    def parse_request(self) -> bool:
        """The headers are read here: the head is complete (or refused) when it returns.

        A plain head is read without the email parser (``request_heads``), and at once
        when the client wrote it at once.
        """
        try:
            return parse_request_head(self, super().parse_request, *self._head_buffer())
        finally:
            self._stop_head_deadline()

    def _head_buffer(self) -> tuple[Any, int]:
        """The buffered stream under eventlet's header reader, and the size of a head read
        from it at once: each of its lines is then shorter than eventlet's cap on one."""
        rfile = self.rfile
        if type(rfile) is eventlet.wsgi.FileObjectForHeaders and hasattr(rfile.fp, "peek"):
            return rfile.fp, eventlet.wsgi.MAX_HEADER_LINE
        return None, 0

    def get_environ(self) -> dict[str, Any]:
        """eventlet's environ, with the size of a plain head: the gate's header cap reads
        it instead of adding up every header of every request again."""
        environ = super().get_environ()
        if self.head_bytes is not None:
            environ[HEAD_BYTES] = self.head_bytes
        return environ

    def _next_request_began(self) -> bool:
        """Wait for the first byte of the connection's next request, up to ``idle_timeout``.

        Waiting between requests is keep-alive, bounded by the idle timeout; the
        head deadline starts once the request does.
        """
        try:
            self.connection.settimeout(type(self).idle_timeout)
            return bool(self.rfile.peek(1))
        except (OSError, ValueError):  # timed out, reset, closed, a TLS error
            return False

    def _start_head_deadline(self) -> None:
        deadlines = type(self).head_deadlines
        if deadlines is not None:
            deadlines.start(self)

    def _stop_head_deadline(self) -> None:
        deadlines = type(self).head_deadlines
        if deadlines is not None:
            deadlines.stop(self)


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
    endpoints: Sequence[Endpoint],
    *,
    tls_context: ssl.SSLContext | None,
    policy: ConnectionPolicy,
    access_log: bool,
    on_ready: Callable[[], None],
    on_stop: Callable[[str], None],
) -> None:
    """Serve on every listener from one connection pool until SIGINT or SIGTERM.

    ``on_ready`` runs once the signal handlers are in place, so a signal sent
    after it has announced readiness always stops the server cleanly. The TLS
    endpoints' listeners are wrapped here (``wrap_tls``); ``Protocol`` holds
    each connection to ``policy``.
    """
    stop = eventlet.event.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        if not stop.ready():
            stop.send(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    pool = eventlet.GreenPool(policy.max_connections)
    protocol = type(
        "Protocol",
        (Protocol,),
        {
            "is_flooding": staticmethod(policy.is_flooding),
            "peers": policy.peer_counter(),
            "head_deadlines": HeadDeadlines(policy.head_timeout) if policy.head_timeout else None,
            "idle_timeout": policy.socket_timeout,
        },
    )
    listeners = wrap_tls(listeners, endpoints, tls_context)
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
            # eventlet would write any peer's X-Forwarded-For as the client's address;
            # the header is read only from trusted proxies (whitelist.core.proxies).
            log_x_forwarded_for=False,
            debug=False,  # never send tracebacks to clients
            # A connection that sends nothing (no TLS ClientHello, half a request
            # line, nothing between requests) is closed after socket_timeout: it
            # held a green thread and a descriptor for good. A healthy WebSocket
            # answers Engine.IO's ping every 25 s, so it never waits that long.
            keepalive=policy.socket_timeout or True,
            socket_timeout=policy.socket_timeout,
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
