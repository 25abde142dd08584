"""The Socket.IO server, with the origin guard on every namespace.

``GuardedServer`` puts the guard in front of the connect handler of *every*
namespace, including handlers a developer registers later without thinking of
it: python-socketio calls ``_trigger_event("connect", ...)`` for each namespace
connect, whether or not a handler exists, so that is where the guard sits.
Refusals are raised as ``ConnectionRefusedError``, the only exception that
python-socketio turns into a ``connect_error`` for the client; any other error
in a connect handler is converted to a refusal here too (fail closed). Clients
cannot reach that path with an event of their own named ``connect``: such
events are dropped.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import socketio
from django.conf import settings
from django.db import close_old_connections
from socketio.exceptions import ConnectionRefusedError as Refused

from whitelist.cache import Snapshot, allowlist
from whitelist.conf import conf
from whitelist.guard import INTERNAL_ERROR, Decision, decide, decide_headers

logger = logging.getLogger(__name__)

WELCOME_EVENT = "permission.message"
REVOKED_EVENT = "permission.revoked"
HELLO_EVENT = "hello.client"


@dataclass(frozen=True, slots=True)
class OpenSocket:
    """What the server knows about one connected socket (one sid, one namespace)."""

    sid: str
    namespace: str
    decision: Decision
    transport: str


class OpenSockets:
    """The connected sockets by (namespace, sid), so later work can find them by origin."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], OpenSocket] = {}

    def add(self, socket: OpenSocket) -> None:
        self._sockets[(socket.namespace, socket.sid)] = socket

    def discard(self, namespace: str, sid: str) -> OpenSocket | None:
        return self._sockets.pop((namespace, sid), None)

    def get(self, namespace: str, sid: str) -> OpenSocket | None:
        return self._sockets.get((namespace, sid))

    def __len__(self) -> int:
        return len(self._sockets)

    def __iter__(self) -> Iterator[OpenSocket]:
        return iter(list(self._sockets.values()))


class GuardedServer(socketio.Server):
    """A ``socketio.Server`` that admits a namespace connect only from allowed origins."""

    def __init__(self, **kwargs: Any) -> None:
        # Our WSGI gate (guardsite/gate.py) answers CORS with the allowlist, so
        # Engine.IO's own same-origin check and CORS headers are switched off.
        kwargs["cors_allowed_origins"] = []
        # With always_connect the client would be told "connected" before the guard runs.
        kwargs["always_connect"] = False
        super().__init__(**kwargs)
        self.open_sockets = OpenSockets()
        # Decisions between the guard and the connect acknowledgement, by (namespace, eio sid).
        self._admitting: dict[tuple[str, str], tuple[str, Decision]] = {}
        self._watcher: Any = None

    def start_allowlist_watcher(self) -> None:
        """Start following rule changes made by other processes (once per server)."""
        if self._watcher is None:
            self._watcher = self.start_background_task(
                allowlist.watch, self.sleep, stop=lambda: False, on_change=self.recheck_open_sockets
            )

    def recheck_open_sockets(self, snapshot: Snapshot) -> int:
        """Disconnect open sockets whose origin the new rules no longer allow."""
        revoked = 0
        for socket in self.open_sockets:
            origin = socket.decision.origin
            if origin is None:  # admitted without an origin, by setting
                continue
            decision = decide_headers(origin, None, snapshot.index)
            if decision.allowed:
                continue
            revoked += 1
            logger.info("Revoking %s on %s: %s", origin, socket.namespace, decision.detail)
            payload = {"message": conf.WHITELIST_REFUSAL_MESSAGE, **decision.as_error_data()}
            try:
                self.emit(REVOKED_EVENT, payload, to=socket.sid, namespace=socket.namespace)
                self.disconnect(socket.sid, namespace=socket.namespace)
            except Exception:  # one broken socket must not shield the others
                logger.exception("Could not revoke %s on %s", socket.sid, socket.namespace)
            self.open_sockets.discard(socket.namespace, socket.sid)
        return revoked

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        # Under gunicorn nobody calls start_allowlist_watcher: the first client does.
        self.start_allowlist_watcher()
        return super()._handle_eio_connect(eio_sid, environ)

    def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> Any:
        """Clients may not send events named like the server's own (``connect``...)."""
        if isinstance(data, list) and data and data[0] in self.reserved_events:
            logger.debug("Dropped a client event named %r", data[0])
            return None
        return super()._handle_event(eio_sid, namespace, id, data)

    def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        try:
            if event == "connect":
                return self._guarded_connect(namespace, *args)
            if event == "disconnect" and args:
                self.open_sockets.discard(namespace, args[0])
            return super()._trigger_event(event, namespace, *args)
        finally:
            # Each handler runs in a green thread of its own, or in a request's, whose
            # Django requests close theirs when they finish: closing after every handler
            # leaves no connection behind (checking before as well would cost every event).
            close_old_connections()

    def _guarded_connect(self, namespace: str, sid: str, environ: dict, *auth: Any) -> Any:
        """The guard, then the application's handler; every failure is a refusal."""
        decision = decide(environ)
        if not decision.allowed:
            log_refusal(decision, namespace)
            raise Refused(conf.WHITELIST_REFUSAL_MESSAGE, decision.as_error_data())
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        self._admitting[(namespace, eio_sid)] = (sid, decision)
        try:
            return self._application_connect(namespace, sid, environ, *auth)
        except Refused:
            raise
        except Exception:
            logger.exception("The connect handler of %s failed; refusing", namespace)
            refusal = Decision(False, INTERNAL_ERROR, decision.origin, decision.source)
            raise Refused(conf.WHITELIST_REFUSAL_MESSAGE, refusal.as_error_data()) from None

    def _application_connect(self, namespace: str, sid: str, environ: dict, *auth: Any) -> Any:
        """Call the handler, with the legacy two-argument form when it takes no auth.

        python-socketio retries on TypeError itself, but a TypeError raised inside a
        handler would then escape and leave the client hanging; trying here keeps
        every outcome a welcome or a refusal.
        """
        try:
            return super()._trigger_event("connect", namespace, sid, environ, *auth)
        except TypeError:
            if auth and auth[0] is not None:
                raise
            return super()._trigger_event("connect", namespace, sid, environ)

    def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        """Welcome a socket once its connect is acknowledged, never before."""
        namespace = namespace or "/"
        try:
            super()._handle_connect(eio_sid, namespace, data)
        finally:
            admitting = self._admitting.pop((namespace, eio_sid), None)
        if admitting is None:
            return
        sid, decision = admitting
        if not self.manager.is_connected(sid, namespace):
            return
        socket = OpenSocket(sid, namespace, decision, self.transport(sid, namespace))
        self.open_sockets.add(socket)
        self.emit(WELCOME_EVENT, welcome_payload(socket), to=sid, namespace=namespace)
        self.emit(HELLO_EVENT, hello_payload(socket), to=sid, namespace=namespace)


_logged_refusals: set[tuple[str | None, str]] = set()


def log_refusal(decision: Decision, namespace: str) -> None:
    """Clients choose what they send: each origin and reason at INFO once, then DEBUG."""
    key = (decision.origin, decision.reason)
    first = key not in _logged_refusals and len(_logged_refusals) < 1000
    if first:
        _logged_refusals.add(key)
    level = logging.INFO if first else logging.DEBUG
    logger.log(level, "Refused %s on %s: %s", decision.origin, namespace, decision.detail)


def welcome_payload(socket: OpenSocket) -> dict[str, Any]:
    """The ``permission.message`` event: the outcome and what the server saw."""
    return {
        "message": conf.WHITELIST_WELCOME_MESSAGE,
        "origin": socket.decision.origin,
        "rule": socket.decision.rule,
        "transport": socket.transport,
    }


def hello_payload(socket: OpenSocket) -> dict[str, Any]:
    """The ``hello.client`` event: which protocol this socket really came over."""
    protocol = "wss://" if socket.decision.secure else "ws://"
    return {
        "message": f"This is a message from the server. It was sent using the {protocol} protocol",
        "protocol": protocol,
        "secure": socket.decision.secure,
    }


def create_server() -> GuardedServer:
    """Build the server and register the handler modules named in settings."""
    async_mode = getattr(settings, "GUARDSITE_SOCKETIO_ASYNC_MODE", "eventlet")
    server = GuardedServer(async_mode=async_mode)
    for module_name in getattr(settings, "GUARDSITE_SOCKETIO_HANDLERS", []):
        importlib.import_module(module_name).register(server)
    return server
