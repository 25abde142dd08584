"""A python-socketio server that admits a socket, on every namespace, only from allowed origins.

``GuardedServer`` is a ``socketio.Server`` built on python-socketio's public
API, the way Flask-SocketIO wraps handlers:

* every connect handler is wrapped as it is registered (``on()``, ``event``,
  ``register_namespace()``), and a catch-all connect handler (namespace
  ``"*"``) guards the namespaces that have none, such as ``"/"``;
* the guard runs first; a refusal is a ``ConnectionRefusedError``, which
  python-socketio sends as the client's ``connect_error``, and any other error
  in a connect handler is a refusal too (fail closed);
* client events named ``connect`` or ``disconnect`` never reach a handler, and
  no event reaches one before its socket's connect is acknowledged;
* the welcome (``permission.message`` and ``hello.client``) is sent once the
  connect is acknowledged, never before;
* admitted sockets are kept in ``open_sockets`` by origin, so that a rule change
  revokes them (``permission.revoked``, then a disconnect).

What python-socketio offers no public hook for is in ``whitelist.engine.hooks``.
Wrap the WSGI app with ``whitelist.OriginGate`` (or ``whitelist.guarded_application``) for CORS.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import socketio
from socketio import packet
from socketio.exceptions import ConnectionRefusedError as Refused

from whitelist.conf import conf
from whitelist.core.display import escaped
from whitelist.core.query import request_query, session_id
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.core.refusal_pace import RefusalPace
from whitelist.engine import hooks as engine
from whitelist.engine import refused_websockets, sockets
from whitelist.engine.calls import (
    CATCH_ALL,
    ConnectCall,
    connect_call,
    disconnect_call,
)
from whitelist.engine.polling import undecodable_post
from whitelist.engine.sessions import EngineSessions
from whitelist.gate.responses import respond_json
from whitelist.reporting.flushing import Recorder
from whitelist.reporting.metrics import GuardMetrics
from whitelist.reporting.reporter import Reporter
from whitelist.rules.cache import AllowlistCache, allowlist
from whitelist.rules.decision import (
    INTERNAL_ERROR,
    Decision,
    admitted_by_report_only,
    decide,
    request_origin,
)
from whitelist.server import users
from whitelist.server.connections import close_connections
from whitelist.server.events import (
    HELLO_EVENT,
    WELCOME_EVENT,
    hello_payload,
    refusal_data,
    welcome_payload,
)
from whitelist.server.handlers import (
    call_connect_handler,
    call_disconnect_handler,
    closing_connections,
)
from whitelist.server.open_sockets import OpenSocket, OpenSockets
from whitelist.server.revocation import revoke_if_refused
from whitelist.server.tasks import BackgroundTasks
from whitelist.server.users import SocketUsers, refusal_reason

logger = logging.getLogger(__name__)

session_log = RateLimitedLog(logger)

_UNDECIDED = object()
# The longest a refusal waits for its turn under a flood (whitelist.core.refusal_pace), and
# how many may wait at once (each holds its connection).
REFUSAL_MAX_WAIT = 2.0
MAX_WAITING_REFUSALS = 1000
# The metrics' reason for a connect the application's own handler refused.
REFUSED_BY_HANDLER = "refused-by-handler"
# The handshake's decision, kept in its environ for the session it opens.
HANDSHAKE_ALLOWED = "whitelist.handshake_allowed"
# What python-socketio answers a connect to a namespace it does not serve.
UNABLE_TO_CONNECT = "Unable to connect"


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
                "in whitelist.OriginGate instead"
            )
        kwargs["always_connect"] = False
        kwargs["cors_allowed_origins"] = []
        super().__init__(*args, **kwargs)
        # In green modes, a flood's refusals wait their turn; a thread would be held. A
        # quarter of a second's refusals go at once: a burst of them is no flood.
        rate = conf.WHITELIST_REFUSAL_RATE
        self.refusal_pace = (
            RefusalPace(rate, burst=max(1.0, rate / 4), max_wait=REFUSAL_MAX_WAIT)
            if rate is not None and math.isfinite(rate) and self.async_mode != "threading"
            else None
        )
        self._waiting_refusals = 0
        # The namespaces python-socketio takes a connect to besides those with handlers.
        self.declared_namespaces: list[str] | str = kwargs.get("namespaces") or ["/"]
        self.allowlist = allowlist_cache
        self.metrics = GuardMetrics(self, allowlist_cache)
        # The refusal log and rule counters, written by the flusher task.
        self.recorder = Recorder()
        self.reporter = Reporter(self.metrics, self.recorder)
        # The Django user of each socket that asked (whitelist.server.users.get_user).
        self.users = SocketUsers()
        users.servers.add(self)
        self.open_sockets = OpenSockets()
        self._class_namespaces: dict[str, socketio.Namespace] = {}
        # The namespaces with a handler (metrics label only these).
        self.handled_namespaces: set[str] = set()
        # Outcomes decided ahead of the admin UI's report (whitelist.engine.instrumentation).
        self.decided: dict[tuple[str, str], Any] = {}
        self.tasks = BackgroundTasks(self)
        super().on("connect", self._guard_connect(CATCH_ALL, None), namespace=CATCH_ALL)
        super().on("disconnect", self._guard_disconnect(CATCH_ALL, None), namespace=CATCH_ALL)
        # Each Engine.IO session's state and deadlines, and a close that never blocks.
        self.sessions = EngineSessions(self.eio)
        # Checks every upstream assumption first: a changed one stops the server here.
        engine.install(self)

    # -- background tasks (whitelist.server.tasks) ------------------------------------

    def start_background_tasks(self) -> None:
        """Start the background tasks and the message queue's listener now.

        python-socketio starts a client manager's listener (Redis and the like)
        only at the first client connect, so until then emits from other
        processes would not reach this server's clients; servers call this as
        they start serving (runsocket, gunicorn.conf.py's post_worker_init).
        """
        self.tasks.start_all()
        engine.start_client_manager(self)

    def start_session_sweeper(self) -> None:
        """Close sessions past their deadlines, from the first session on."""
        self.tasks.start_session_sweeper()

    def shutdown(self) -> None:
        """Stop the background tasks (the last counts written first) and python-socketio's."""
        self.tasks.stop()
        super().shutdown()

    def flush_reports(self) -> bool:
        """Write the refusal log and rule counters now (a stopping gunicorn worker)."""
        return self.tasks.flush_reports()

    def session_ended(self, key: str | None) -> None:
        """A logout in this process: disconnect that session's protected sockets now."""
        self.users.end_session(key)
        self.tasks.users_changed()

    # -- requests ------------------------------------------------------------------

    def handle_request(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """python-socketio's WSGI entry point; a session is used only by the origin that opened it.

        Engine.IO identifies a session by the ``sid`` in the query alone: a page
        that learned one could poll and post on it from any origin. A request
        naming another origin than the session's gets HTTP 403. A WebSocket
        handshake from an origin the rules refuse gets no session at all
        (``whitelist.engine.refused_websockets``).
        """
        fields = request_query(environ)
        sid = session_id(fields)
        if (
            sid is None
            and not self.handshake_allowed(environ)  # kept for the session's connect deadline
            and refused_websockets.answers(self.eio, environ, fields)
            and not conf.WHITELIST_REPORT_ONLY  # its admissions depend on the namespace
        ):
            return refused_websockets.serve(self, environ, start_response)
        state = self.sessions.get(sid)
        if state is not None:
            opened_by = state.origin
            origin = request_origin(environ)
            if opened_by is not None and origin is not None and origin != opened_by:
                session_log.log(
                    "requests from another origin than their session's",
                    logging.WARNING,
                    "Refused a request from %s for an Engine.IO session opened by %s",
                    escaped(origin),  # the header as sent when it is no origin
                    opened_by,
                )
                body = {"message": "This session belongs to another origin."}
                return respond_json(start_response, "403 Forbidden", body)
        if sid is not None and sockets.forget_if_closed(self.eio, sid):
            body = {"message": "This session is closed."}
            return respond_json(start_response, "400 Bad Request", body)
        if sockets.has_session(self.eio, sid) and environ.get("REQUEST_METHOD") == "POST":
            problem = undecodable_post(environ, sockets.max_payload_bytes(self.eio))
            if problem is not None:
                self.sessions.close(sid)  # as python-engineio does after a bad packet
                return respond_json(start_response, "400 Bad Request", {"message": problem})
        response = super().handle_request(environ, start_response)
        if sid is not None and environ.get("REQUEST_METHOD") == "GET":
            self.sessions.polled(sid)  # a closing session's last poll
        return response

    # -- registration: every connect and disconnect handler is wrapped ---------------

    def on(
        self,
        event: str,
        handler: Callable[..., Any] | None = None,
        namespace: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
        """python-socketio's ``on()``; connect and disconnect handlers get the guard."""
        namespace = namespace or "/"
        self.handled_namespaces.add(namespace)

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
        self.handled_namespaces.add(namespace_handler.namespace)
        self._class_namespaces[namespace_handler.namespace] = namespace_handler
        namespace_handler.trigger_event = closing_connections(  # type: ignore[method-assign]
            namespace_handler.trigger_event
        )

    def instrument(self, *args: Any, **kwargs: Any) -> Any:
        """python-socketio's admin UI, told of a connect only once the guard admitted it.

        ``instrument()`` registers Engine.IO connect and disconnect handlers of
        its own: the engine layer puts the session hooks back in front of them.
        """
        admin = super().instrument(*args, **kwargs)
        engine.reinstall_after_instrument(self)
        return admin

    # -- connect -------------------------------------------------------------------

    def _guard_connect(self, registered: str, handler: Callable[..., Any] | None) -> Callable:
        """The connect handler python-socketio calls for ``registered``: guard, then ``handler``.

        Anything but a real connect is answered ``False``: python-socketio takes
        any other value as a welcome.
        """

        def guarded_connect(*args: Any) -> Any:
            call = connect_call(self, registered, args)
            if call is None:
                logger.debug("Refused a connect call that python-socketio did not make")
                return False
            decided = self.decided.pop((call.namespace, call.sid), _UNDECIDED)
            if decided is not _UNDECIDED:
                return decided
            close_connections()
            try:
                return self._admit(call, handler)
            finally:
                close_connections()

        if handler is not None:
            functools.update_wrapper(guarded_connect, handler)
        return guarded_connect

    def _admit(self, call: ConnectCall, handler: Callable[..., Any] | None) -> Any:
        """Decide, run the application's handler, and queue the welcome; raise to refuse."""
        if call.namespace == CATCH_ALL:
            return False  # python-socketio accepts "*" itself once a catch-all exists
        revision = self.allowlist.loaded_revision()
        decision = decide(call.environ, self.allowlist, call.namespace)
        if admitted_by_report_only(decision, call.namespace):
            self.reporter.refused(decision, call.namespace, call.environ, report_only=True)
            decision = decision._replace(allowed=True)  # the client is told nothing different
            # Its cookies came from a site the rules do not list: no user for get_user().
            self.users.bind_anonymous(call.namespace, call.sid)
        if decision.allowed:
            decision = self._user_decision(call, decision)
        if not decision.allowed:
            self._refuse(call, decision)
        try:
            self.tasks.start_allowlist_watcher()
            self.tasks.start_reporting()
            result = call_connect_handler(self._class_namespaces, call, handler)
        except Refused:
            self._refused_by_handler(call, decision)
            raise
        except ConnectionRefusedError as exc:  # the built-in one: python-socketio <5.18 misses it
            self._refused_by_handler(call, decision)
            raise Refused(*(exc.args or ("Connection refused by server",))) from None
        except Exception:
            logger.exception("The connect handler of %s failed; refusing", call.namespace)
            failed = Decision(False, INTERNAL_ERROR, decision.origin, decision.source)
            self._refuse(call, failed, False)
            raise Refused(*refusal_data(failed)) from None
        if result is False:
            self._refused_by_handler(call, decision)
            return False
        self.reporter.admitted(decision, call.namespace, call.environ)
        state = self.sessions.get(self.manager.eio_sid_from_sid(call.sid, call.namespace))
        if state is None:  # the session closed while the handler ran (python-socketio 5.14)
            self.users.discard(call.namespace, call.sid)
            return False
        socket = OpenSocket(call.sid, call.namespace, decision, revision)
        self.open_sockets.add(socket)
        state.unwelcomed[call.namespace] = socket
        return result

    def refuse_connect(self, eio_sid: str, namespace: str) -> bool:
        """Answer a connect the rules refuse with its ``connect_error`` here; True if it was.

        Asked only for a session whose handshake the rules refused. Through
        python-socketio, a refusal cost nearly what an admission does: it allots
        the socket an id, calls the guard, catches its refusal and takes the id
        back. The client gets the same ``connect_error`` either way. Anything
        else goes through python-socketio: an origin a rule allows now, one that
        report-only lets in, and a namespace python-socketio would answer
        "Unable to connect" (or ``"*"``, which it takes itself, or one this
        session is connected to already).

        Under a flood the answer waits its turn (``wait_for_refusal_turn``); the
        refusal is decided and reported before the wait, so a rule added
        meanwhile takes effect from the next connect.
        """
        state = self.sessions.get(eio_sid)
        if state is None or state.environ is None or not self._takes_namespace(namespace):
            return False
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
            return False
        refusal = self._paced_refusal(state.environ, namespace)
        if refusal is None:
            return False
        if self.sessions.get(eio_sid) is not state or self.sessions.is_closing(eio_sid):
            return True  # closed while it waited: nobody left to tell
        for part in refusal:
            self.eio.send(eio_sid, part)
        if not state.joined:
            self.sessions.refused(eio_sid)
        return True

    def refusal_for(self, environ: Mapping[str, Any], namespace: Any) -> list[Any] | None:
        """The answer to a connect over a refused handshake's WebSocket, which has no session.

        Its ``connect_error``, reported and after its turn under a flood, as
        ``refuse_connect`` answers; python-socketio's own "Unable to connect" for a
        namespace it would not hand to the guard; None if the rules (or report-only)
        let it in now.
        """
        if not self._takes_namespace(namespace):
            return self._connect_error(UNABLE_TO_CONNECT, namespace)
        return self._paced_refusal(environ, namespace)

    def _paced_refusal(self, environ: Mapping[str, Any], namespace: str) -> list[Any] | None:
        """This connect's encoded ``connect_error``, reported, after its turn under a flood;
        None if the rules (or report-only) let it in."""
        decision = decide(environ, self.allowlist, namespace)
        if decision.allowed or admitted_by_report_only(decision, namespace):
            return None
        self.reporter.refused(decision, namespace, environ)
        self.wait_for_refusal_turn()
        return self._connect_error(Refused(*refusal_data(decision)).error_args, namespace)

    def _connect_error(self, data: Any, namespace: Any) -> list[Any]:
        """A ``connect_error`` packet, encoded as python-socketio sends it (one or more parts)."""
        encoded = self.packet_class(packet.CONNECT_ERROR, data=data, namespace=namespace).encode()
        return encoded if isinstance(encoded, list) else [encoded]

    def wait_for_refusal_turn(self) -> None:
        """Under a flood of refusals, wait for this one's turn: admitted work goes first.

        Green modes only (``whitelist.core.refusal_pace``); a thread would be held.
        Each waiting refusal holds its connection: past ``MAX_WAITING_REFUSALS``
        of them, the rest are answered at once.
        """
        if self.refusal_pace is None or self._waiting_refusals >= MAX_WAITING_REFUSALS:
            return
        wait = self.refusal_pace.wait()
        if wait:
            self._waiting_refusals += 1
            try:
                self.sleep(wait)
            finally:
                self._waiting_refusals -= 1

    def _takes_namespace(self, namespace: object) -> bool:
        """Would python-socketio hand a connect to ``namespace`` to the guard?"""
        if not isinstance(namespace, str) or namespace == CATCH_ALL:
            return False  # msgpack may carry any type: python-socketio's to refuse
        declared = self.declared_namespaces
        return namespace in self.handled_namespaces or declared == "*" or namespace in declared

    def _refuse(self, call: ConnectCall, decision: Decision, raise_: bool = True) -> None:
        """Report the refusal; raise it to python-socketio unless the handler already did."""
        self.users.discard(call.namespace, call.sid)
        self.reporter.refused(decision, call.namespace, call.environ)
        if not raise_:
            return
        state = self.sessions.get(self.manager.eio_sid_from_sid(call.sid, call.namespace))
        if state is not None:
            state.refused_by_guard = True
        raise Refused(*refusal_data(decision)) from None

    def _refused_by_handler(self, call: ConnectCall, decision: Decision) -> None:
        """Report a refusal by the application's own connect handler."""
        detail = "the connect handler refused"
        refused = decision._replace(allowed=False, reason=REFUSED_BY_HANDLER, detail=detail)
        self._refuse(call, refused, False)

    def _user_decision(self, call: ConnectCall, decision: Decision) -> Decision:
        """``decision``, or a refusal if the namespace needs a user this socket does not have."""
        if call.namespace not in conf.WHITELIST_PROTECTED_NAMESPACES:
            return decision
        try:
            user = self.users.resolve(call.namespace, call.sid, call.environ).user
            reason = refusal_reason(user, call.namespace)
        except Exception:
            session_log.log(
                "failed user lookups",
                logging.ERROR,
                "Could not tell the user of a socket on %s; refusing",
                call.namespace,
                exc_info=True,
            )
            return Decision(False, INTERNAL_ERROR, decision.origin, decision.source)
        if reason is None:
            return decision
        detail = f"{call.namespace} needs a logged-in user with its permissions"
        return decision._replace(allowed=False, reason=reason, detail=detail)

    def handshake_allowed(self, environ: Mapping[str, Any]) -> bool:
        """Would the rules admit this Engine.IO handshake's origin? (Its connect deadline.)

        Decided once per handshake: a WebSocket's, before python-engineio opens its session.
        """
        allowed = environ.get(HANDSHAKE_ALLOWED)
        if allowed is None:
            allowed = decide(environ, self.allowlist).allowed
            if isinstance(environ, dict):
                environ[HANDSHAKE_ALLOWED] = allowed
        return bool(allowed)

    def is_connect_call(self, namespace: str, args: tuple[Any, ...]) -> bool:
        """Are these the arguments python-socketio passes to a real connect?"""
        return connect_call(self, namespace, args) is not None

    def is_open(self, namespace: str, sid: str) -> bool:
        """Was this socket admitted, and is it still open?"""
        return (namespace, sid) in self.open_sockets

    def is_welcomed(self, eio_sid: str, namespace: str, sid: str | None) -> bool:
        """Was this socket admitted, acknowledged and not revoked? (Events wait for that.)"""
        if sid is None or (namespace, sid) not in self.open_sockets:
            return False
        state = self.sessions.get(eio_sid)
        return state is not None and namespace not in state.unwelcomed

    def preconnect_limit(self, eio_sid: str) -> int | None:
        """The WebSocket message budget of a session with no welcomed socket (None: no budget)."""
        return None if self.sessions.has_joined(eio_sid) else conf.WHITELIST_PRECONNECT_BYTES

    def end_refused_session(self, eio_sid: str) -> None:
        """Close, after a short grace, the session whose connect the guard has just refused.

        A session that already has a welcomed socket on another namespace stays.
        """
        state = self.sessions.get(eio_sid)
        if state is not None and state.refused_by_guard:
            state.refused_by_guard = False
            if not state.joined:
                self.sessions.refused(eio_sid)

    def welcome(self, eio_sid: str, namespace: str) -> None:
        """Welcome the socket python-socketio has just acknowledged, if the guard admitted it."""
        state = self.sessions.get(eio_sid)
        socket = state.unwelcomed.pop(namespace, None) if state is not None else None
        if socket is None:
            return
        self.sessions.joined(eio_sid)
        if not self.manager.is_connected(socket.sid, namespace):
            self.open_sockets.discard(namespace, socket.sid)
            self.users.discard(namespace, socket.sid)
            return
        if socket.revision != self.allowlist.loaded_revision() and revoke_if_refused(
            self, socket, self.allowlist.snapshot()
        ):
            return  # the rules changed while it connected, and no longer allow it
        try:
            transport = self.transport(socket.sid, namespace)
            welcome = welcome_payload(socket.decision, transport)
            # The socket is on this server: a message queue need not carry these.
            self.emit(WELCOME_EVENT, welcome, to=socket.sid, namespace=namespace, ignore_queue=True)
            hello = hello_payload(socket.decision, transport)
            self.emit(HELLO_EVENT, hello, to=socket.sid, namespace=namespace, ignore_queue=True)
        except Exception:  # the session went away meanwhile: nobody left to welcome
            logger.debug("Could not welcome %s", socket, exc_info=True)

    # -- disconnect ----------------------------------------------------------------

    def _guard_disconnect(self, registered: str, handler: Callable[..., Any] | None) -> Callable:
        """The disconnect handler for ``registered``: runs once per admitted socket."""

        def guarded_disconnect(*args: Any) -> Any:
            call = disconnect_call(self, registered, args)
            if call is None or self.open_sockets.discard(call.namespace, call.sid) is None:
                logger.debug("Ignored a disconnect call that python-socketio did not make")
                return None  # or another call for this socket got there first
            state = self.sessions.get(self.manager.eio_sid_from_sid(call.sid, call.namespace))
            if state is not None:
                state.unwelcomed.pop(call.namespace, None)  # gone before its welcome
            self.users.discard(call.namespace, call.sid)
            close_connections()
            try:
                return call_disconnect_handler(self._class_namespaces, call, handler)
            except TypeError:  # python-socketio would retry it and then lose it
                logger.exception("The disconnect handler of %s failed", call.namespace)
                return None
            finally:
                close_connections()

        if handler is not None:
            functools.update_wrapper(guarded_disconnect, handler)
        return guarded_disconnect
