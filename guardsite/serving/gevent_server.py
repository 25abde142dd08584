"""Serve a WSGI app with gevent's WSGI server on one or more addresses, until a signal stops it.

This module assumes ``gevent.monkey.patch_all()`` already ran (see manage.py).
It gives gevent's server what ``eventlet_server`` gives eventlet's: a cap per
peer address, flooding addresses dropped unread, a deadline per request head,
a silent connection closed after the socket timeout, a failed TLS handshake
told in one line, and nothing a client wrote ever printed raw or as a
traceback. It only overrides the methods gevent documents for subclasses
(``WSGIServer.handle``, ``WSGIHandler.read_requestline``, ``read_request``,
``handle_one_response``, ``handle_error`` and ``log_error``); ``handler_contract_breaches``
checks them at start-up (``guardsite.E005``).
"""

from __future__ import annotations

import http.client
import inspect
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.pywsgi

from guardsite.peers import EXEMPT, PeerCounter
from guardsite.serving.addresses import Endpoint
from guardsite.serving.closing import (
    FLOOD_HOLD_SECONDS,
    ConnectionPolicy,
    limited_log,
    log_over_cap,
    log_slow_head,
    log_tls_failure,
)

logger = logging.getLogger(__name__)
# runsocket --access-log: one line per request, through the project's LOGGING.
ACCESS_LOGGER = logging.getLogger("guardsite.serving.access")

# What each override relies on in gevent: the method, and its parameters after self.
OVERRIDDEN = {
    gevent.pywsgi.WSGIServer: {"handle": ["sock", "address"]},
    gevent.pywsgi.WSGIHandler: {
        "__init__": ["sock", "address", "server", "rfile"],
        "read_requestline": [],
        "read_request": ["raw_requestline"],
        "handle_one_response": [],
        "handle_error": ["t", "v", "tb"],
        "log_error": ["msg", "args"],
    },
}


def handler_contract_breaches() -> list[str]:
    """What ``GuardedServer`` and ``Handler`` rely on in gevent.pywsgi and no longer find."""
    breaches = []
    for owner, methods in OVERRIDDEN.items():
        for name, parameters in methods.items():
            method = getattr(owner, name, None)
            where = f"{owner.__name__}.{name}()"
            if not callable(method):
                breaches.append(f"{where} is gone")
            elif (found := list(inspect.signature(method).parameters)[1:]) != parameters:
                breaches.append(f"{where} takes {found}")
    return breaches


class Handler(gevent.pywsgi.WSGIHandler):
    """One connection's requests, each head complete within the deadline.

    The first head's deadline started at the accept (``GuardedServer.handle``);
    each later head's starts at its first byte, and waiting for that byte is
    keep-alive, bounded by the socket timeout.
    """

    head_timer: gevent.Timeout | None = None
    head_timeout: float | None = None  # set per server
    idle_timeout: float | None = None
    _served_one = False

    def read_requestline(self) -> str:
        if self._served_one:
            if not self._next_request_began():
                return ""  # gevent closes the connection
            self.head_timer = _start_timer(self.head_timeout)
        self._served_one = True
        return super().read_requestline()

    def read_request(self, raw_requestline: str) -> bool:
        """The head is complete (or refused) when this returns: the deadline ends here.

        A head http.client refuses (over 100 headers) is a bad request; gevent printed
        its traceback to stderr.
        """
        try:
            return super().read_request(raw_requestline)
        except http.client.HTTPException as exc:
            raise ValueError(f"request head refused ({type(exc).__name__})") from None
        except OSError:  # reset or timed out mid-head: gevent printed a traceback for it
            raise ValueError("request head cut short") from None
        finally:
            _stop_timer(self.head_timer)

    def handle_one_response(self) -> None:
        """After a WebSocket request, no more HTTP on the connection.

        The WebSocket (``whitelist.engine.wsproto_websocket``) answers the
        upgrade itself on the socket; when it ended, gevent read what was left
        (a close frame) as the next request line and logged its raw bytes
        ("Invalid HTTP method"). A refused upgrade is closed too.
        """
        super().handle_one_response()
        if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            self.close_connection = True

    def handle_error(self, kind: type[BaseException], error: BaseException, tb: Any) -> None:
        """An error while answering, past the app's own call (``answering_errors``).

        A client gone while its answer was written is no error: gevent let only
        EPIPE and ECONNRESET pass quietly, and printed a traceback through its hub
        for the rest (over TLS, the SSL layer's own errors). Anything else is
        logged once, through LOGGING, and the connection closed; an error in the app's
        own call never comes here (``answering_errors`` answers it with a 500).
        """
        self.close_connection = True
        if not isinstance(error, OSError):
            method, path = self.environ.get("REQUEST_METHOD"), self.environ.get("PATH_INFO")
            logger.error(
                "Unhandled error answering %s %r", method, path, exc_info=(kind, error, tb)
            )

    def log_error(self, msg: str, *args: Any) -> None:
        """gevent's lines about malformed requests: a client provokes them at will."""
        limited_log.log(
            "malformed requests",
            logging.INFO,
            "Refused a malformed request from %s: %s",
            self.client_address[0],
            msg % args if args else msg,
        )

    def _next_request_began(self) -> bool:
        try:
            self.socket.settimeout(self.idle_timeout)
            return bool(self.rfile.peek(1))
        except (OSError, ValueError):  # timed out, reset, closed, a TLS error
            return False


class GuardedServer(gevent.pywsgi.WSGIServer):
    """gevent's WSGI server with the per-address cap, flood drop and TLS handshake of
    ``eventlet_server.Protocol``; requests are read by ``Handler``."""

    def __init__(
        self,
        listener: Any,
        application: Callable[..., Any],
        *,
        handler: type[Handler],
        pool: gevent.pool.Pool,
        tls_context: ssl.SSLContext | None,
        peers: PeerCounter | None,
        is_flooding: Callable[[str], bool] | None,
        socket_timeout: float | None,
        access_log: bool,
    ) -> None:
        super().__init__(
            listener,
            application,
            spawn=pool,
            handler_class=handler,
            log=ACCESS_LOGGER if access_log else None,
            error_log=logger,
            environ={"wsgi.url_scheme": "https" if tls_context else "http"},
        )
        self.tls_context = tls_context
        self.peers = peers
        self.is_flooding = is_flooding
        self.socket_timeout = socket_timeout

    def handle(self, sock: Any, address: tuple[Any, ...]) -> None:
        peer = address[0]
        key = EXEMPT if self.peers is None else self.peers.enter(peer)
        if key is None:
            log_over_cap(peer, self.peers.limit if self.peers else 0)
            return  # gevent closes the socket, unread
        timer: gevent.Timeout | None = None
        handler: Handler | None = None
        try:
            if self.is_flooding is not None and self.is_flooding(peer):
                gevent.sleep(FLOOD_HOLD_SECONDS)  # closing.FLOOD_HOLD_SECONDS says why
                return
            # The first head's deadline: from the accept, TLS handshake included.
            timer = _start_timer(self.handler_class.head_timeout)
            sock.settimeout(self.socket_timeout)
            if self.tls_context is not None:
                sock = self._shake_hands(sock, peer)
                if sock is None:
                    return
            handler = self.handler_class(sock, address, self)
            handler.head_timer = timer
            handler.handle()
        except gevent.Timeout as expired:
            if expired is not timer and (handler is None or expired is not handler.head_timer):
                raise
            log_slow_head(peer, self.handler_class.head_timeout)
        except OSError:
            # The client went away while gevent answered a bad request (its sendall
            # there is unguarded): nothing left to tell it, nothing worth a line.
            pass
        finally:
            _stop_timer(timer)
            if handler is not None:
                _stop_timer(handler.head_timer)
            if self.peers is not None:
                self.peers.leave(key)

    def _shake_hands(self, sock: Any, peer: str) -> Any:
        """The TLS socket, handshake done in this connection's green thread; None if it
        failed (and was told in one line)."""
        assert self.tls_context is not None
        tls_sock = self.tls_context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        try:
            tls_sock.do_handshake()
        except ssl.SSLError as error:
            log_tls_failure(peer, error, handshake=True)
        except OSError:  # reset or timed out before a word: nothing worth a line
            pass
        except BaseException:  # the head deadline: handle() tells it
            tls_sock.close()
            raise
        else:
            return tls_sock
        tls_sock.close()
        return None


def answering_errors(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app, its unhandled errors logged once and answered with HTTP 500.

    Left to gevent, the traceback went to stderr through the hub, with the
    request's environ, and not through the project's LOGGING.
    """

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception:
            method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            logger.exception("Unhandled error answering %s %r", method, path)
            body = b"Internal Server Error"
            headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            start_response("500 Internal Server Error", headers, sys.exc_info())
            return [body]

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
    """Serve every listener from one pool of greenlets until SIGINT or SIGTERM.

    The same contract as ``eventlet_server.serve_until_stopped``: ``on_ready``
    runs once the signal handlers are in place.
    """
    stop = gevent.event.AsyncResult()
    handlers = [
        gevent.signal_handler(sig, lambda sig=sig: stop.set(sig.name))
        for sig in (signal.SIGINT, signal.SIGTERM)
    ]
    pool = gevent.pool.Pool(policy.max_connections)
    peers = policy.peer_counter()
    handler = type(
        "Handler",
        (Handler,),
        {"head_timeout": policy.head_timeout, "idle_timeout": policy.socket_timeout},
    )
    servers = [
        GuardedServer(
            listener,
            answering_errors(app),
            handler=handler,
            pool=pool,
            tls_context=tls_context if endpoint.tls else None,
            peers=peers,
            is_flooding=policy.is_flooding,
            socket_timeout=policy.socket_timeout,
            access_log=access_log,
        )
        for listener, endpoint in zip(listeners, endpoints, strict=True)
    ]
    try:
        for server in servers:
            server.start()
        on_ready()
        on_stop(stop.get())
    finally:
        for signal_handler in handlers:
            signal_handler.cancel()
        for server in servers:
            server.close()


def _start_timer(seconds: float | None) -> gevent.Timeout | None:
    if not seconds:
        return None
    timer = gevent.Timeout(seconds)
    timer.start()
    return timer


def _stop_timer(timer: gevent.Timeout | None) -> None:
    # Kept, not forgotten: a caught expiry is told from others by identity.
    if timer is not None:
        timer.cancel()
