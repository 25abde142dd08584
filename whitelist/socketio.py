"""A python-socketio server that admits a socket, on every namespace, only from allowed origins.

``GuardedServer`` is a ``socketio.Server`` built on python-socketio's public
API, the way Flask-SocketIO wraps handlers:

* every connect handler is wrapped as it is registered (``on()``, ``event``,
  ``register_namespace()``), and a catch-all connect handler (namespace
  ``"*"``) guards the namespaces that have none, such as ``"/"``;
* the guard runs first; a refusal is a ``ConnectionRefusedError``, which
  python-socketio sends as the client's ``connect_error``, and any other error
  in a connect handler is a refusal too (fail closed);
* client events named ``connect`` or ``disconnect`` never reach a handler;
* the welcome (``permission.message`` and ``hello.client``) is sent once the
  connect is acknowledged, never before;
* admitted sockets are kept in ``open_sockets`` by origin, so that a rule change
  revokes them (``permission.revoked``, then a disconnect).

Wrap the WSGI app with ``whitelist.wsgi.OriginGate`` for CORS answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import socketio
from django.db import close_old_connections
from socketio.exceptions import ConnectionRefusedError as Refused

from .cache import AllowlistCache, Snapshot, allowlist
from .events import (
    HELLO_EVENT,
    REVOKED_EVENT,
    WELCOME_EVENT,
    hello_payload,
    refusal_data,
    revoked_payload,
    welcome_payload,
)
from .guard import INTERNAL_ERROR, Decision, decide, decide_headers
from .handlers import closing_connections, fitting, namespace_method
from .open_sockets import OpenSocket, OpenSockets
from .refusal_log import log_refusal

logger = logging.getLogger(__name__)

CATCH_ALL = "*"
EVENT_TYPE = str(socketio.packet.EVENT)
BINARY_EVENT_TYPE = str(socketio.packet.BINARY_EVENT)
_UNDECIDED = object()


class GuardedServer(socketio.Server):
    """A ``socketio.Server`` whose every namespace admits only allowed origins.

    Takes python-socketio's own arguments, except that ``always_connect`` must
    stay off (it would tell clients "connected" before the guard decides) and
    Engine.IO's CORS is off (``OriginGate`` answers CORS from the allowlist).
    """

    def __init__(self, *args: Any, allowlist_cache: AllowlistCache = allowlist, **kwargs: Any):
        if kwargs.get("always_connect"):
            raise ValueError("always_connect=True welcomes clients before the guard decides")
        if kwargs.get("cors_allowed_origins") not in (None, []):
            raise ValueError(
                "cors_allowed_origins is answered from the allowlist: wrap the WSGI app "
                "in whitelist.wsgi.OriginGate instead"
            )
        kwargs["always_connect"] = False
        kwargs["cors_allowed_origins"] = []
        super().__init__(*args, **kwargs)
        self.allowlist = allowlist_cache
        self.open_sockets = OpenSockets()
        self._class_namespaces: dict[str, socketio.Namespace] = {}
        # Admitted sockets waiting for python-socketio to acknowledge their connect.
        self._unwelcomed: dict[str, list[OpenSocket]] = {}
        # Outcomes decided ahead of the admin UI's report (see _guard_before_instrumentation).
        self._decided: dict[tuple[str, str], Any] = {}
        self._watcher: Any = None
        self._stopping = False
        super().on("connect", self._guard_connect(CATCH_ALL, None), namespace=CATCH_ALL)
        super().on("disconnect", self._guard_disconnect(CATCH_ALL, None), namespace=CATCH_ALL)
        _hook_engineio_messages(self)

    # -- registration: every connect and disconnect handler is wrapped ---------------

    def on(
        self,
        event: str,
        handler: Callable[..., Any] | None = None,
        namespace: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
        """python-socketio's ``on()``; connect and disconnect handlers get the guard."""
        namespace = namespace or "/"

        def set_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
            if event == "connect":
                wrapped = self._guard_connect(namespace, handler)
            elif event == "disconnect":
                wrapped = self._guard_disconnect(namespace, handler)
            else:
                wrapped = closing_connections(handler)
            super(GuardedServer, self).on(event, wrapped, namespace=namespace)
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def register_namespace(self, namespace_handler: socketio.Namespace) -> None:
        """python-socketio's ``register_namespace()``; its connect goes through the guard.

        The catch-all connect and disconnect handlers take precedence over
        class-based namespaces in python-socketio's lookup, and hand over to them.
        """
        super().register_namespace(namespace_handler)
        self._class_namespaces[namespace_handler.namespace] = namespace_handler
        namespace_handler.trigger_event = closing_connections(  # type: ignore[method-assign]
            namespace_handler.trigger_event
        )

    def instrument(self, *args: Any, **kwargs: Any) -> Any:
        """python-socketio's admin UI, reporting only what the guard admitted."""
        admin = super().instrument(*args, **kwargs)
        _guard_before_instrumentation(self)
        return admin

    # -- connect -------------------------------------------------------------------

    def _guard_connect(self, registered: str, handler: Callable[..., Any] | None) -> Callable:
        """The connect handler python-socketio calls for ``registered``: guard, then ``handler``."""

        def guarded_connect(*args: Any) -> Any:
            call = self._connect_call(registered, args)
            if call is None:
                logger.debug("Dropped a client event named 'connect'")
                return None
            namespace, prefix, sid, environ, auth = call
            decided = self._decided.pop((namespace, sid), _UNDECIDED)
            if decided is not _UNDECIDED:
                return decided
            try:
                return self._admit(namespace, sid, environ, auth, handler, prefix)
            finally:
                close_old_connections()

        if handler is not None:
            functools.update_wrapper(guarded_connect, handler)
        return guarded_connect

    def _connect_call(
        self, registered: str, args: tuple[Any, ...]
    ) -> tuple[str, tuple[Any, ...], str, dict[str, Any], Any] | None:
        """Namespace, prefix, sid, environ and auth of a real connect; None for a client event.

        A real connect passes the very environ python-socketio stored for the
        session; a client's event named ``connect`` can only pass JSON data.
        """
        layouts = [(args[0], (args[0],), args[1:])] if registered == CATCH_ALL and args else []
        # The literal namespace "*" is called without the namespace in front.
        layouts.append((registered, (), args))
        for namespace, prefix, rest in layouts:
            if len(rest) < 2 or not isinstance(namespace, str) or not isinstance(rest[0], str):
                continue
            sid, environ = rest[0], rest[1]
            if environ is not None and environ is self.get_environ(sid, namespace):
                auth = rest[2] if len(rest) > 2 else None
                return namespace, prefix, sid, environ, auth
        return None

    def _admit(
        self,
        namespace: str,
        sid: str,
        environ: dict[str, Any],
        auth: Any,
        handler: Callable[..., Any] | None,
        prefix: tuple[Any, ...],
    ) -> Any:
        """Decide, run the application's handler, and queue the welcome; raise to refuse."""
        decision = decide(environ, self.allowlist)
        if not decision.allowed:
            log_refusal(decision, namespace)
            raise Refused(*refusal_data(decision))
        self.start_allowlist_watcher()
        try:
            result = self._application_connect(namespace, sid, environ, auth, handler, prefix)
        except Refused:
            raise
        except ConnectionRefusedError as exc:  # the built-in one: python-socketio <5.18 misses it
            raise Refused(*(exc.args or ("Connection refused by server",))) from None
        except Exception:
            logger.exception("The connect handler of %s failed; refusing", namespace)
            failed = Decision(False, INTERNAL_ERROR, decision.origin, decision.source)
            raise Refused(*refusal_data(failed)) from None
        if result is False:
            return False
        socket = OpenSocket(sid, namespace, decision)
        self.open_sockets.add(socket)
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        self._unwelcomed.setdefault(eio_sid, []).append(socket)
        return result

    def _application_connect(
        self,
        namespace: str,
        sid: str,
        environ: dict[str, Any],
        auth: Any,
        handler: Callable[..., Any] | None,
        prefix: tuple[Any, ...],
    ) -> Any:
        if handler is not None:
            return handler(*fitting(handler, (*prefix, sid, environ, auth), len(prefix) + 2))
        found = self._class_namespace(namespace)
        if found is None:
            return True
        instance, prefix = found
        args = (*prefix, sid, environ, auth)
        method = namespace_method(instance, "connect")
        if method is not None:  # else a custom trigger_event may still want it all
            args = fitting(method, args, len(prefix) + 2)
        return instance.trigger_event("connect", *args)

    def _class_namespace(self, namespace: str) -> tuple[socketio.Namespace, tuple[Any, ...]] | None:
        """The class-based namespace python-socketio would pick, and its argument prefix."""
        if namespace in self._class_namespaces:
            return self._class_namespaces[namespace], ()
        if CATCH_ALL in self._class_namespaces:
            return self._class_namespaces[CATCH_ALL], (namespace,)
        return None

    def _send_welcomes(self, eio_sid: str) -> None:
        """Welcome the sockets of ``eio_sid`` whose connect python-socketio acknowledged."""
        sockets = self._unwelcomed.pop(eio_sid, None)
        for socket in sockets or ():
            if not self.manager.is_connected(socket.sid, socket.namespace):
                self.open_sockets.discard(socket.namespace, socket.sid)
                continue
            try:
                transport = self.transport(socket.sid, socket.namespace)
                welcome = welcome_payload(socket.decision, transport)
                self.emit(WELCOME_EVENT, welcome, to=socket.sid, namespace=socket.namespace)
                hello = hello_payload(socket.decision)
                self.emit(HELLO_EVENT, hello, to=socket.sid, namespace=socket.namespace)
            except Exception:  # the session went away meanwhile: nobody left to welcome
                logger.debug(
                    "Could not welcome %s on %s", socket.sid, socket.namespace, exc_info=True
                )

    # -- disconnect ----------------------------------------------------------------

    def _guard_disconnect(self, registered: str, handler: Callable[..., Any] | None) -> Callable:
        """The disconnect handler for ``registered``: clients cannot fake it."""

        def guarded_disconnect(*args: Any) -> Any:
            call = self._disconnect_call(registered, args)
            if call is None:
                logger.debug("Dropped a client event named 'disconnect'")
                return None
            namespace, prefix, sid, rest = call
            try:
                return self._application_disconnect(namespace, prefix, sid, rest, handler)
            finally:
                close_old_connections()

        if handler is not None:
            functools.update_wrapper(guarded_disconnect, handler)
        return guarded_disconnect

    def _disconnect_call(
        self, registered: str, args: tuple[Any, ...]
    ) -> tuple[str, tuple[Any, ...], str, tuple[Any, ...]] | None:
        """Namespace, prefix, sid and the rest of a real disconnect; None for a client event.

        python-socketio marks a socket as disconnecting before it calls the
        handler, so a socket that is still connected is sending an event.
        """
        layouts = [(args[0], (args[0],), args[1:])] if registered == CATCH_ALL and args else []
        layouts.append((registered, (), args))
        for namespace, prefix, rest in layouts:
            if not rest or not isinstance(namespace, str) or not isinstance(rest[0], str):
                continue
            sid = rest[0]
            if (namespace, sid) not in self.open_sockets:
                continue
            if self.manager.is_connected(sid, namespace):
                return None
            self.open_sockets.discard(namespace, sid)
            return namespace, prefix, sid, rest[1:]
        return None

    def _application_disconnect(
        self,
        namespace: str,
        prefix: tuple[Any, ...],
        sid: str,
        rest: tuple[Any, ...],
        handler: Callable[..., Any] | None,
    ) -> Any:
        self._unwelcomed.pop(self.manager.eio_sid_from_sid(sid, namespace) or "", None)
        if handler is not None:
            return handler(*fitting(handler, (*prefix, sid, *rest), len(prefix) + 1))
        found = self._class_namespace(namespace)
        if found is None:
            return None
        instance, prefix = found
        # Namespace.trigger_event retries a disconnect without its reason itself.
        return instance.trigger_event("disconnect", *prefix, sid, *rest)

    # -- rule changes --------------------------------------------------------------

    def start_allowlist_watcher(self) -> None:
        """Follow rule changes made by other processes (once per server; idempotent)."""
        if self._watcher is None:
            self._watcher = self.start_background_task(
                self.allowlist.watch,
                self.sleep,
                stop=lambda: self._stopping,
                on_change=self.recheck_open_sockets,
            )

    def shutdown(self) -> None:
        """Stop the allowlist watcher (after its current sleep) and python-socketio's tasks."""
        self._stopping = True
        super().shutdown()

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
            try:
                payload = revoked_payload(decision)
                self.emit(REVOKED_EVENT, payload, to=socket.sid, namespace=socket.namespace)
                self.disconnect(socket.sid, namespace=socket.namespace)
            except Exception:  # one broken socket must not shield the others
                logger.exception("Could not revoke %s on %s", socket.sid, socket.namespace)
            self.open_sockets.discard(socket.namespace, socket.sid)
        return revoked


# -- the two places that reach past python-socketio's public API -------------------
#
# Checked against python-socketio 5.14.0 to 5.18.1 with python-engineio 4.13.2 to
# 4.15.1 (whitelist.versions.TESTED); make test runs the guard's tests at both ends.


def _hook_engineio_messages(server: GuardedServer) -> None:
    """Drop client events named like reserved ones; welcome once each connect is acknowledged.

    Engine.IO delivers each client message through the handler python-socketio
    registered with ``eio.on("message")``; wrapping that handler is the one
    place that sees a message before python-socketio dispatches it and after it
    has answered it:

    * python-socketio dispatches a client's event named ``connect`` or
      ``disconnect`` to those handlers, in a thread of its own, so it could
      race a real disconnect; dropped here, it never gets that far.
    * python-socketio acknowledges a connect (the CONNECT packet, then
      ``manager.connect``) after the connect handler returns and offers no hook
      for "after"; the welcome goes out right behind it, in the same thread.
    """
    handle_message = server.eio.handlers["message"]

    def handle_message_guarded(eio_sid: str, data: Any) -> Any:
        if _names_a_reserved_event(server, data):
            logger.debug("Dropped a client event named like a reserved one")
            return None
        try:
            return handle_message(eio_sid, data)
        finally:
            if server._unwelcomed:
                server._send_welcomes(eio_sid)

    server.eio.on("message", handle_message_guarded)


def _names_a_reserved_event(server: GuardedServer, data: Any) -> bool:
    """Is ``data`` an EVENT or BINARY_EVENT packet (text encoding) named connect or disconnect?

    Decoded as python-socketio decodes it, since JSON escapes can spell a name.
    Other serializers (msgpack) are left to the handler wrappers' own checks.
    """
    if not isinstance(data, str) or data[:1] not in (EVENT_TYPE, BINARY_EVENT_TYPE):
        return False
    try:
        decoded = server.packet_class(encoded_packet=data).data
    except Exception:  # python-socketio refuses it the same way right after
        return False
    return isinstance(decoded, list) and bool(decoded) and decoded[0] in server.reserved_events


def _guard_before_instrumentation(server: GuardedServer) -> None:
    """Put the guard in front of the admin UI's report of each connect and disconnect.

    ``Server.instrument()`` replaces the private ``_trigger_event`` with one that
    reports every connect to the admin UI *before* calling the connect handler,
    and every client event named ``disconnect`` as a disconnect (then fails on
    the real one). Here the guard and the application's handler decide first;
    only an admitted socket is reported, and the handler is not run twice.
    """
    report = server._trigger_event
    dispatch = functools.partial(socketio.Server._trigger_event, server)

    def trigger_event(event: str, namespace: str, *args: Any) -> Any:
        if event == "connect":
            if server._connect_call(namespace, args) is None:
                return None
            sid = args[0]
            outcome = dispatch(event, namespace, *args)  # raises or returns False to refuse
            if outcome is False:
                return False
            server._decided[(namespace, sid)] = outcome
            try:
                return report(event, namespace, *args)
            finally:
                server._decided.pop((namespace, sid), None)
        if event == "disconnect" and args and server.manager.is_connected(args[0], namespace):
            return None  # a client's event named "disconnect"
        return report(event, namespace, *args)

    server._trigger_event = trigger_event  # type: ignore[method-assign]
