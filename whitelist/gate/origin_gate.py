"""WSGI gate in front of the Socket.IO endpoint: CORS, JSONP and handshake refusal.

Engine.IO's own CORS handling is switched off (``GuardedServer``), because it either
trusts only the page's own host or, with ``"*"``, sends
``Access-Control-Allow-Credentials`` to every site. This gate answers with the
allowlist instead:

* allowed origin: ``Access-Control-Allow-Origin`` plus credentials;
* refused origin: ``Access-Control-Allow-Origin`` without credentials, so a
  refused page can still read the polite refusal over cross-origin long-polling,
  but never with the visitor's cookies;
* ``WHITELIST_REFUSE_AT_HANDSHAKE``: a refused origin gets HTTP 403 before any
  Engine.IO session exists.

JSONP polling (``j=`` in the query) is refused outright: a ``<script>`` tag
carries cookies but no ``Origin`` header, and no Socket.IO 3+ client uses it.
Requests with more than 16 KB of headers get HTTP 431, and handshakes beyond an
address's ``WHITELIST_CONNECT_RATE`` get HTTP 429 (``whitelist.core.ratelimit``).

The gate also answers ``/healthz`` and ``/metrics`` before Django (``endpoints``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from whitelist.conf import conf
from whitelist.core.query import request_query, session_id
from whitelist.core.ratelimit import AttemptLimiter, address_key, client_key, retry_after
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine.locks import bookkeeping_lock
from whitelist.engine.logs import ErrorsStream
from whitelist.gate.endpoints import (
    HEALTH_PATH,
    METRICS_PATH,
    health,
    metrics_response,
    metrics_served,
)
from whitelist.gate.responses import respond_json
from whitelist.gate.upgrades import refuse_unsound_upgrade
from whitelist.reporting.metrics import GuardMetrics
from whitelist.reporting.tallies import HANDSHAKE
from whitelist.rules.decision import Decision, admitted_by_report_only, decide

if TYPE_CHECKING:
    from whitelist.reporting.reporter import Reporter

logger = logging.getLogger("whitelist.server.guarded")
limited_log = RateLimitedLog(logger)
RATE_LIMITED = "rate-limited"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class OriginGate:
    """Wrap the Socket.IO WSGI app; requests outside ``path`` pass straight through."""

    def __init__(
        self,
        app: WSGIApp,
        path: str = "/socket.io/",
        metrics: GuardMetrics | None = None,
        reporter: Reporter | None = None,
        refusal_turn: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.path = "/" + path.strip("/") + "/"
        self.metrics = metrics
        self.reporter = reporter
        # Waits for a refusal's turn under a flood (GuardedServer.wait_for_refusal_turn).
        self.refusal_turn = refusal_turn
        self._limiter: AttemptLimiter | None = None

    @property
    def limiter(self) -> AttemptLimiter | None:
        """The per-address handshake limiter for the current settings (None: no limit)."""
        rate, burst = conf.WHITELIST_CONNECT_RATE, conf.WHITELIST_CONNECT_BURST
        if rate is None:
            return None
        if self._limiter is None or (self._limiter.rate, self._limiter.burst) != (rate, burst):
            self._limiter = AttemptLimiter(rate, burst, lock=bookkeeping_lock())
        return self._limiter

    def is_flooding(self, address: str) -> bool:
        """Should the server drop this peer's connections unread? (``whitelist.core.ratelimit``)

        Never a trusted proxy's: it speaks for many clients.
        """
        limiter = self.limiter
        if limiter is None or address in conf.WHITELIST_TRUSTED_PROXIES:
            return False
        return limiter.is_flooding(address_key(address))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        errors = environ.get("wsgi.errors")
        if errors is not None and type(errors) is not ErrorsStream:
            # One line per write, and eventlet's "socket shutdown error" kept quiet.
            environ["wsgi.errors"] = ErrorsStream(errors)
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH:
            return health(start_response)
        if path == METRICS_PATH and self.metrics is not None and metrics_served():
            return metrics_response(environ, start_response, self.metrics)
        if not (path + "/").startswith(self.path):
            return self.app(environ, start_response)
        if header_bytes(environ) > MAX_HEADER_BYTES:
            # An Engine.IO session keeps its handshake's environ for its whole life.
            body = {"error": f"request headers over {MAX_HEADER_BYTES} bytes"}
            return respond_json(start_response, "431 Request Header Fields Too Large", body)
        # Decoded as Engine.IO decodes it ("%6A=0" is "j=0" too), blank values kept.
        query = request_query(environ)
        # A handshake, as python-engineio tells one: no non-empty sid in the query.
        handshake = session_id(query) is None
        if handshake and not _told_of_forwarded_for and "HTTP_X_FORWARDED_FOR" in environ:
            _tell_of_unread_forwarded_for()
        limiter = self.limiter
        if limiter is not None and handshake:
            address = client_key(
                environ, conf.WHITELIST_TRUSTED_PROXIES, conf.WHITELIST_PROXY_COUNT
            )
            wait = limiter.take(address)
            if wait:
                return _too_many_attempts(start_response, address, wait)
        # Before the WebSocket branch: python-engineio picks the transport from the
        # query, so a polling request may carry an Upgrade header and still get JSONP.
        if "j" in query:
            body = {"error": "JSONP is not supported"}
            return respond_json(start_response, "400 Bad Request", body)
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            if _headerless_session(query, environ):
                refusal = _headerless_upgrade(start_response, decide(environ))
                if refusal is not None:
                    return refusal
            refusal = refuse_unsound_upgrade(environ, query, start_response)
            if refusal is not None:
                return refusal
            if not conf.WHITELIST_REFUSE_AT_HANDSHAKE:
                # Browsers apply no CORS to WebSockets: the namespace connect decides.
                return self.app(environ, start_response)
        decision = decide(environ)
        # Never credentials for an origin the rules do not list, report-only or not.
        cors = _cors_headers(environ, decision)
        refused = not decision.allowed and not admitted_by_report_only(decision, None)
        # A poll naming no origin is its session's, judged at its handshake (_headerless_upgrade).
        if (
            refused
            and conf.WHITELIST_REFUSE_AT_HANDSHAKE
            and not _headerless_session(query, environ)
        ):
            if self.reporter is not None:
                self.reporter.refused(decision, HANDSHAKE, environ)
            if self.refusal_turn is not None:
                self.refusal_turn()
            body = {"message": conf.WHITELIST_REFUSAL_MESSAGE, "data": decision.as_error_data()}
            return respond_json(start_response, "403 Forbidden", body, cors)
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return respond_json(start_response, "204 No Content", None, cors)

        def start_with_cors(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, *cors], *exc_info)

        return self.app(environ, start_with_cors)


_told_of_forwarded_for = False


def _tell_of_unread_forwarded_for() -> None:
    """Behind a proxy that nobody declared, every client is the proxy: say so, once a process.

    Anyone may send the header, so this says what to check, not that a proxy is there.
    """
    global _told_of_forwarded_for
    if conf.WHITELIST_PROXY_COUNT:
        return
    _told_of_forwarded_for = True
    logger.warning(
        "A handshake came with X-Forwarded-For, but WHITELIST_PROXY_COUNT is 0: if a proxy "
        "is in front, every client behind it counts as the proxy's address, all sharing one "
        "handshake limit (WHITELIST_CONNECT_RATE, WHITELIST_CONNECT_BURST), and flood "
        "detection can drop them together. Set WHITELIST_PROXY_COUNT to the number of "
        "proxies in front and list them in WHITELIST_TRUSTED_PROXIES."
    )


# Socket.IO requests carry a few hundred bytes of headers (cookies included, a few KB).
# python-engineio keeps the handshake's environ as long as the session lives, so
# padded headers (eventlet accepts 64 KB) multiplied memory per session.
MAX_HEADER_BYTES = 16 * 1024


# A WSGI server that read the request head itself may give its size in bytes here (as
# received, the request line included), sparing the gate a scan of the whole environ on
# every request: runsocket in eventlet mode does (guardsite.request_heads).
HEAD_BYTES = "whitelist.head_bytes"


def header_bytes(environ: dict[str, Any]) -> int:
    """The size of the request's headers, as the server received them."""
    told = environ.get(HEAD_BYTES)
    if type(told) is int:
        return told
    return sum(
        len(name) + len(value)
        for name, value in environ.items()
        if name.startswith("HTTP_") and isinstance(value, str)
    )


def _headerless_session(query: dict[str, list[str]], environ: dict[str, Any]) -> bool:
    """Is this a request of an open session (``sid=``) with neither ``Origin`` nor ``Referer``?"""
    return (
        session_id(query) is not None
        and "HTTP_ORIGIN" not in environ
        and "HTTP_REFERER" not in environ
    )


def _headerless_upgrade(start_response: Callable[..., Any], decision: Decision) -> Any:
    """HTTP 403 for a WebSocket naming no origin that would take over an open session.

    The session's origin was judged at its handshake, but anyone holding its sid
    may upgrade it. Every browser sends ``Origin`` on a WebSocket, and
    python-socketio's client sends its connect headers; so one with neither
    header is no page of an allowed site. (Polling requests naming no origin are
    served: python-socketio's client sends its headers on the handshake only.)
    None where missing origins are allowed, by setting or report-only.
    """
    if decision.allowed or admitted_by_report_only(decision, None):
        return None
    body = {"message": conf.WHITELIST_REFUSAL_MESSAGE, "data": decision.as_error_data()}
    return respond_json(start_response, "403 Forbidden", body)


def _too_many_attempts(start_response: Callable[..., Any], address: str, wait: float) -> Any:
    """HTTP 429, before any decision or session: cheaper than any other answer."""
    limited_log.log(
        f"refusals ({RATE_LIMITED})",
        logging.INFO,
        "Refused a handshake from %s: over %s attempts a second",
        address,
        conf.WHITELIST_CONNECT_RATE,
    )
    body = {
        "message": "Too many connection attempts from your address: try again later.",
        "data": {"reason": RATE_LIMITED},
    }
    headers = [("Retry-After", retry_after(wait))]
    return respond_json(start_response, "429 Too Many Requests", body, headers)


def _cors_headers(environ: dict[str, Any], decision: Decision) -> list[tuple[str, str]]:
    headers = [("Vary", "Origin")]
    # Echo only an Origin header that parsed as a canonical origin.
    if decision.source != "origin" or decision.origin is None:
        return headers
    headers.append(("Access-Control-Allow-Origin", environ["HTTP_ORIGIN"]))
    if decision.allowed:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if environ.get("REQUEST_METHOD") == "OPTIONS":
        headers.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
        if requested.isascii() and requested.isprintable():
            headers.append(("Access-Control-Allow-Headers", requested))
        headers.append(("Access-Control-Max-Age", "600"))
    return headers


def guarded_application(
    server: Any, django_application: WSGIApp, socketio_path: str = "socket.io"
) -> OriginGate:
    """One WSGI app for the whole site: Socket.IO behind the gate, Django for the rest."""
    import socketio

    app = socketio.WSGIApp(server, django_application, socketio_path=socketio_path)
    return OriginGate(
        app,
        path=socketio_path,
        metrics=getattr(server, "metrics", None),
        reporter=getattr(server, "reporter", None),
        refusal_turn=getattr(server, "wait_for_refusal_turn", None),
    )
