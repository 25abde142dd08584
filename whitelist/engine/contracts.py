"""What the engine layer assumes of python-socketio, python-engineio and eventlet, checked.

Each ``Contract`` is one assumption a reach in ``REACH.md`` makes, with a
stable check id. ``verify(async_mode)`` tries them on a throwaway
``socketio.Server`` of that mode: the behaviour ones by driving python-socketio's
own Engine.IO handlers with a made-up session (no socket, no network), the
others by looking at the attributes and signatures the hooks use.

``GuardedServer`` calls ``ensure(async_mode)`` before it installs a hook, and
``manage.py check`` reports the same results (``whitelist.E1xx``). A broken
contract whose hook guards something stops the server with
``EngineContractError``, naming the symbol: a changed upstream must never make
the guard refuse everyone, or drop a protection, without a word. A broken
contract whose hook only keeps the log quiet is a warning.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.socket import Socket
from socketio import packet

from whitelist.engine import logs, sockets

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"
# A made-up Engine.IO session, never on the network.
PROBE_SID = "whitelist-contract-probe"
# A long-polling handshake, answered in memory.
HANDSHAKE_ENVIRON = {
    "REQUEST_METHOD": "GET",
    "QUERY_STRING": "EIO=4&transport=polling",
    "PATH_INFO": "/socket.io/",
    "wsgi.url_scheme": "http",
    "HTTP_HOST": "probe",
}
BINARY_EVENT_WITH_ONE_ATTACHMENT = '51-["probe",{"_placeholder":true,"num":0}]'


class Broken(Exception):
    """An assumption does not hold; the message says what was found instead."""


@dataclass(frozen=True)
class Contract:
    """One assumption of the engine layer about an upstream symbol."""

    check_id: str
    symbol: str
    severity: str
    check: Callable[[Probe], None]


@dataclass(frozen=True)
class Breach:
    """A contract that failed, and how."""

    contract: Contract
    found: str

    def __str__(self) -> str:
        return f"{self.contract.check_id}: {self.contract.symbol}: {self.found}"


class EngineContractError(RuntimeError):
    """An upstream release broke what the engine layer relies on: the server must not start."""

    def __init__(self, breaches: list[Breach]) -> None:
        self.breaches = breaches
        listed = "; ".join(str(breach) for breach in breaches)
        super().__init__(
            f"The installed python-socketio, python-engineio or eventlet changed what "
            f"Guardsite's engine layer relies on ({listed}). Install a release in the "
            "tested range (whitelist/engine/REACH.md) or update the engine layer."
        )


class Probe:
    """A plain ``socketio.Server`` of one async mode, and what driving it showed."""

    def __init__(self, async_mode: str) -> None:
        self.async_mode = async_mode
        self.server = socketio.Server(async_mode=async_mode, logger=False, engineio_logger=False)
        self.environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "QUERY_STRING": "EIO=4"}
        self.seen: dict[str, Any] = {}
        self._connected = False

    @property
    def eio(self) -> Any:
        return self.server.eio

    def handler(self, event: str) -> Callable[..., Any]:
        handler = self.eio.handlers.get(event)
        if not callable(handler):
            raise Broken(f"no Engine.IO {event!r} handler registered by python-socketio")
        return handler

    def connect(self) -> None:
        """Open the made-up session and connect it to "/", as a client would (once)."""
        if self._connected:
            return
        self._connected = True
        seen = self.seen

        def on_connect(sid: str, environ: Any, auth: Any = None) -> None:
            seen["sid"], seen["environ"] = sid, environ
            seen["stored"] = self.server.get_environ(sid, "/")

        def on_disconnect(sid: str, *args: Any) -> None:
            seen["connected while disconnecting"] = self.server.manager.is_connected(sid, "/")

        self.server.on("connect", on_connect)
        self.server.on("disconnect", on_disconnect)
        self.handler("connect")(PROBE_SID, self.environ)
        self.handler("message")(PROBE_SID, "0")
        if "sid" not in seen:
            raise Broken("a CONNECT packet did not reach the connect handler")


def _handlers_registered(probe: Probe) -> None:
    for event in ("connect", "message", "disconnect"):
        probe.handler(event)
    if not callable(getattr(probe.eio, "on", None)):
        raise Broken("engineio.Server.on is gone")
    probe.server.on("probe", print, namespace="/probe")
    if "/probe" not in getattr(probe.server, "handlers", {}):
        raise Broken("socketio.Server.handlers does not list the namespaces with handlers")


def _environ_identity(probe: Probe) -> None:
    probe.connect()
    if probe.seen["environ"] is not probe.environ:
        raise Broken("the connect handler got another environ than the handshake's")
    if probe.seen["stored"] is not probe.environ:
        raise Broken("get_environ() returns a copy, not the environ passed to the connect handler")
    if getattr(probe.server, "environ", {}).get(PROBE_SID) is not probe.environ:
        raise Broken("socketio.Server.environ does not keep the handshake's environ by session")


def _manager_lookups(probe: Probe) -> None:
    probe.connect()
    manager, sid = probe.server.manager, probe.seen["sid"]
    if manager.eio_sid_from_sid(sid, "/") != PROBE_SID:
        raise Broken("manager.eio_sid_from_sid() does not find the session")
    if manager.sid_from_eio_sid(PROBE_SID, "/") != sid:
        raise Broken("manager.sid_from_eio_sid() does not find the socket")
    if manager.is_connected(sid, "/") is not True:
        raise Broken("manager.is_connected() is not True for a connected socket")


def _binary_packets(probe: Probe) -> None:
    probe.connect()
    pending = getattr(probe.server, "_binary_packet", None)
    if not isinstance(pending, dict):
        raise Broken("socketio.Server._binary_packet is not a dict")
    probe.handler("message")(PROBE_SID, BINARY_EVENT_WITH_ONE_ATTACHMENT)
    if PROBE_SID not in pending:
        raise Broken("a binary packet waiting for attachments is not kept by Engine.IO sid")
    if not issubclass(getattr(probe.server, "packet_class", object), packet.Packet):
        raise Broken("socketio.Server.packet_class is not the packet class it decodes with")
    decoded = packet.Packet(encoded_packet=BINARY_EVENT_WITH_ONE_ATTACHMENT)
    if (decoded.packet_type, decoded.attachment_count) != (packet.BINARY_EVENT, 1):
        raise Broken("socketio.packet.Packet no longer decodes packet_type and attachment_count")


def _disconnect_forgets(probe: Probe) -> None:
    probe.connect()
    disconnect = probe.handler("disconnect")
    try:
        disconnect(PROBE_SID, probe.eio.reason.CLIENT_DISCONNECT)
    except TypeError:
        disconnect(PROBE_SID)
    if probe.seen.get("connected while disconnecting") is not False:
        raise Broken("a socket still counts as connected while its disconnect handler runs")
    if probe.server.manager.is_connected(probe.seen["sid"], "/"):
        raise Broken("the Engine.IO disconnect handler left the socket connected")


def _malformed_messages(probe: Probe) -> None:
    from whitelist.engine.messages import MALFORMED

    probe.connect()
    for message in ("9", "0/probe,{", b"\x00\x01"):
        try:
            probe.handler("message")(PROBE_SID, message)
        except MALFORMED:
            continue
        except Exception as error:
            raise Broken(
                f"{message!r} raised {type(error).__name__}, not one of {MALFORMED}"
            ) from None
        raise Broken(f"{message!r} raised nothing")


def _trigger_event(probe: Probe) -> None:
    parameters = list(inspect.signature(socketio.Server._trigger_event).parameters.values())
    shape = [(each.name, each.kind) for each in parameters[:3]]
    expected = [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("event", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("namespace", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    if shape != expected or parameters[3].kind != inspect.Parameter.VAR_POSITIONAL:
        raise Broken(f"its signature is {inspect.signature(socketio.Server._trigger_event)}")


def _manager_initialisation(probe: Probe) -> None:
    if probe.server.__dict__.get("manager_initialized") is not False:
        raise Broken("socketio.Server.manager_initialized is not False before the first connect")
    if not callable(getattr(probe.server.manager, "initialize", None)):
        raise Broken("the client manager has no initialize()")


def _engineio_sockets(probe: Probe) -> None:
    if not isinstance(getattr(probe.eio, "sockets", None), dict):
        raise Broken("engineio.Server.sockets is not a dict of sessions")
    if not isinstance(getattr(probe.eio, "max_http_buffer_size", None), int):
        raise Broken("engineio.Server.max_http_buffer_size is not a number")
    if not callable(getattr(probe.eio, "disconnect", None)):
        raise Broken("engineio.Server.disconnect is gone")
    if not isinstance(getattr(probe.eio.reason, "SERVER_DISCONNECT", None), str):
        raise Broken("engineio.Server.reason.SERVER_DISCONNECT is gone")
    socket = Socket(probe.eio, PROBE_SID)
    for name in ("closed", "closing", "upgraded", "upgrading"):
        if not isinstance(getattr(socket, name, None), bool):
            raise Broken(f"engineio.socket.Socket.{name} is not a flag")
    if not callable(getattr(socket.queue, "empty", None)) or not callable(socket.send):
        raise Broken("engineio.socket.Socket has no queue with empty(), or no send()")
    close = inspect.signature(Socket.close).parameters
    if not {"wait", "abort", "reason"} <= set(close):
        raise Broken(f"Socket.close{inspect.signature(Socket.close)} lacks wait, abort or reason")
    if not callable(getattr(Socket, "_websocket_handler", None)):
        raise Broken("engineio.socket.Socket._websocket_handler is gone")


def _ping_timer(probe: Probe) -> None:
    """An in-memory polling handshake: its ping timer is a Socket method, started after connect.

    Only eventlet's and gevent's timers are tracked (and ended at the close): in
    threading mode this contract has nothing to guard.
    """
    if probe.async_mode not in ("eventlet", "gevent"):
        return
    started: list[Any] = []
    on_connect = probe.handler("connect")

    def connect(sid: str, environ: Any, *args: Any) -> Any:
        started.append("connect")
        return on_connect(sid, environ, *args)

    probe.eio.on("connect", connect)
    probe.eio.start_background_task = lambda target, *args, **kwargs: started.append(target)
    try:
        probe.eio.handle_request(
            dict(HANDSHAKE_ENVIRON, **{"wsgi.input": io.BytesIO()}), lambda *answer: None
        )
    finally:
        del probe.eio.start_background_task
    timers = [task for task in started if task != "connect" and sockets.owning_socket(task)]
    if "connect" not in started or not timers:
        raise Broken("a handshake started no ping timer bound to its Socket")
    if started.index("connect") > started.index(timers[0]):
        raise Broken("the ping timer starts before the connect handler, which opens the state")
    thread = probe.eio._async["thread"](target=print)
    if probe.async_mode == "eventlet" and "g" not in vars(thread):
        raise Broken("python-engineio's eventlet thread has no green thread in .g to kill")
    if probe.async_mode == "gevent" and not callable(getattr(thread, "kill", None)):
        raise Broken("python-engineio's gevent thread is no greenlet with kill()")
    from whitelist.engine import ping_timers

    if not ping_timers.is_upstream_ping(timers[0]):
        raise Broken("the ping task is not Socket._send_ping, which ping_timers replaces")
    _ping_as_ping_timers_pings(probe, sockets.owning_socket(timers[0]))
    _woken_ping_ends(probe, sockets.owning_socket(timers[0]))


def _ping_as_ping_timers_pings(probe: Probe, socket: Any) -> None:
    """After its sleep, ``_send_ping`` only sets ``last_ping`` and queues a PING, as
    ``ping_timers.ping`` does."""
    before = dict(vars(socket))
    queued = socket.queue.qsize()
    probe.eio.sleep = lambda seconds: None
    try:
        socket._send_ping()
    finally:
        del probe.eio.sleep
    changed = {name for name, value in vars(socket).items() if before.get(name, ...) is not value}
    if changed != {"last_ping"} or socket.queue.qsize() != queued + 1:
        raise Broken(
            f"_send_ping changes {sorted(changed)} and queues {socket.queue.qsize() - queued} "
            "packets, where ping_timers.ping sets last_ping and queues a PING"
        )


def _woken_ping_ends(probe: Probe, socket: Any) -> None:
    """A closing session's ping task, woken from its sleep, returns without a ping."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 1:
            raise Broken("a closing session's ping task sleeps again when woken")

    queued = socket.queue.qsize()
    socket.closing = True
    probe.eio.sleep = sleep
    try:
        socket._send_ping()
    finally:
        del probe.eio.sleep
    if socket.queue.qsize() != queued:
        raise Broken("a closing session's ping task still pings when woken")


def _websocket_driver(probe: Probe) -> None:
    drivers = getattr(probe.eio, "_async", None)
    if not isinstance(drivers, dict) or not callable(drivers.get("websocket")):
        raise Broken("engineio.Server._async has no 'websocket' class")


def _engineio_decoding(probe: Probe) -> None:
    if eio_packet.Packet(encoded_packet="4probe").packet_type != eio_packet.MESSAGE:
        raise Broken("engineio.packet.Packet does not decode a message")
    if len(eio_payload.Payload(encoded_payload="4a\x1e4b").packets) != 2:
        raise Broken("engineio.payload.Payload does not decode a payload")
    # whitelist.engine.packets: a digit after the type means the rest is kept as text.
    plain = eio_packet.Packet(encoded_packet="412")
    if (plain.packet_type, plain.data) != (eio_packet.MESSAGE, "12"):
        raise Broken("engineio.packet.Packet reads what follows a digit as JSON")
    if not isinstance(getattr(eio_payload.Payload, "max_decode_packets", None), int):
        raise Broken("engineio.payload.Payload has no max_decode_packets")
    try:
        eio_packet.Packet(encoded_packet="")
    except Exception:
        return
    raise Broken("engineio.packet.Packet accepts an empty message")


def _eventlet_websocket(probe: Probe) -> None:
    if probe.async_mode != "eventlet":
        return
    from engineio.async_drivers.eventlet import WebSocketWSGI
    from eventlet.websocket import FailedConnectionError, RFC6455WebSocket

    ws = WebSocketWSGI(lambda ws: None, probe.eio)
    if not hasattr(ws, "max_frame_length") or not hasattr(ws, "support_legacy_versions"):
        raise Broken("WebSocketWSGI has no max_frame_length or support_legacy_versions")
    if not callable(getattr(WebSocketWSGI, "_handle_hybi_request", None)):
        raise Broken("WebSocketWSGI._handle_hybi_request is gone")
    if "message" not in inspect.signature(RFC6455WebSocket._recv_frame).parameters:
        raise Broken("RFC6455WebSocket._recv_frame takes no message")
    mask = list(inspect.signature(RFC6455WebSocket._apply_mask).parameters)
    if mask != ["data", "mask", "length", "offset"]:
        raise Broken(f"RFC6455WebSocket._apply_mask takes {mask}")
    from whitelist.engine.eventlet_websocket import GuardedRFC6455WebSocket

    try:
        RFC6455WebSocket.__new__(RFC6455WebSocket).__class__ = GuardedRFC6455WebSocket
    except TypeError as error:
        raise Broken(
            f"an RFC6455WebSocket cannot become a GuardedRFC6455WebSocket: {error}"
        ) from error
    if not issubclass(FailedConnectionError, Exception):
        raise Broken("eventlet.websocket.FailedConnectionError is not an exception")


def _open_packet(probe: Probe) -> None:
    """A refused origin's WebSocket gets the OPEN packet python-engineio sends a new session."""
    from whitelist.engine import refused_websockets

    probe.eio.start_background_task = lambda *args, **kwargs: None  # no ping task
    try:
        body = probe.eio.handle_request(
            dict(HANDSHAKE_ENVIRON, **{"wsgi.input": io.BytesIO()}), lambda *status: None
        )
    finally:
        del probe.eio.start_background_task
    sent = eio_packet.Packet(encoded_packet=b"".join(body).decode())
    if sent.packet_type != eio_packet.OPEN or not isinstance(sent.data, dict):
        raise Broken(f"a handshake was answered {body!r}, not an OPEN packet")
    ours = refused_websockets.open_packet(
        probe.eio, sent.data.get("sid"), sent.data.get("upgrades")
    )
    if ours.data != sent.data:
        raise Broken(f"python-engineio's OPEN packet is {sent.data}, not {ours.data}")


def _gevent_upgrade_socket(probe: Probe) -> None:
    """gevent.pywsgi gives an upgrade's socket only through its wsgi.input; the WebSocket
    would answer every upgrade with a 500 without it (``wsproto_websocket``)."""
    if probe.async_mode != "gevent":
        return
    import socket

    from gevent import pywsgi

    from whitelist.engine.wsproto_websocket import connection_socket

    server = pywsgi.WSGIServer(("127.0.0.1", 0), lambda environ, start: [], log=None)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: probe\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        handler = server.handler_class(ours, ("127.0.0.1", 1), server)
        try:
            line = handler.read_requestline()
            handler.read_request(line)
            found = connection_socket(handler.get_environ())
        finally:
            handler.rfile.close()
    if found != (ours, "gevent"):
        raise Broken(f"an upgrade's wsgi.input gives {found[0]!r}, not the connection")


def _server_loggers(probe: Probe) -> None:
    for name, holder in (("socketio.Server", probe.server), ("engineio.Server", probe.eio)):
        if not isinstance(logs.logger_of(holder), logging.Logger):
            found = type(getattr(holder, "logger", None)).__name__
            raise Broken(f"{name}.logger is a {found}, not a logging.Logger to filter")


def _says(module_name: str, words: str) -> None:
    """Does the upstream module still write these words? (A log filter matches them.)"""
    module = importlib.import_module(module_name)
    if words not in inspect.getsource(module):
        raise Broken(f"{module_name} no longer says {words!r}")


def _closed_session_log(probe: Probe) -> None:
    parameters = list(inspect.signature(probe.eio._log_error_once).parameters)
    if parameters != ["message", "message_key"]:
        raise Broken(f"engineio.Server._log_error_once takes {parameters}")
    _says("engineio.base_server", logs.CLOSED_SESSION_RACE.strip("'"))


def _socket_shutdown_text(probe: Probe) -> None:
    if probe.async_mode == "eventlet":
        _says("eventlet.websocket", logs.SOCKET_SHUTDOWN_ERROR.partition(":")[0])


def _redis_retry_text(probe: Probe) -> None:
    _says("socketio.redis_manager", logs.REDIS_RETRY_WORD)


def _decodes_through_packet_class(probe: Probe) -> None:
    """python-socketio decodes a message with ``packet_class(encoded_packet=message)``:
    the guard's decode is handed on there (``decoded_once``), else it is made twice."""
    probe.connect()
    seen: list[Any] = []

    class Recording(probe.server.packet_class):  # type: ignore[misc,name-defined]
        def __init__(self, *args: Any, encoded_packet: Any = None, **kwargs: Any) -> None:
            seen.append(encoded_packet)
            super().__init__(*args, encoded_packet=encoded_packet, **kwargs)

    message = '2["whitelist-contract-probe"]'
    original, probe.server.packet_class = probe.server.packet_class, Recording
    try:
        probe.handler("message")(PROBE_SID, message)
    finally:
        probe.server.packet_class = original
    if not any(each is message for each in seen):
        raise Broken("a message is not decoded by packet_class(encoded_packet=...): twice now")


CONTRACTS = (
    Contract("whitelist.E101", "engineio.Server.handlers", ERROR, _handlers_registered),
    Contract("whitelist.E102", "socketio.Server.get_environ", ERROR, _environ_identity),
    Contract("whitelist.E103", "socketio.base_manager.BaseManager", ERROR, _manager_lookups),
    Contract("whitelist.E104", "socketio.Server._binary_packet", ERROR, _binary_packets),
    Contract(
        "whitelist.E105", "socketio.Server._handle_eio_disconnect", ERROR, _disconnect_forgets
    ),
    Contract("whitelist.E106", "socketio.Server._trigger_event", ERROR, _trigger_event),
    Contract(
        "whitelist.E107", "socketio.Server.manager_initialized", ERROR, _manager_initialisation
    ),
    Contract("whitelist.E108", "engineio.socket.Socket", ERROR, _engineio_sockets),
    Contract("whitelist.E109", "engineio.socket.Socket._send_ping", ERROR, _ping_timer),
    Contract("whitelist.E110", "engineio.Server._async", ERROR, _websocket_driver),
    Contract("whitelist.E111", "engineio.packet.Packet", ERROR, _engineio_decoding),
    Contract("whitelist.E112", "eventlet.websocket.RFC6455WebSocket", ERROR, _eventlet_websocket),
    Contract("whitelist.E113", "socketio.Server._handle_eio_message", ERROR, _malformed_messages),
    Contract("whitelist.E114", "socketio/engineio Server.logger", ERROR, _server_loggers),
    Contract(
        "whitelist.E115",
        "gevent.pywsgi.WSGIHandler.get_environ (wsgi.input)",
        ERROR,
        _gevent_upgrade_socket,
    ),
    Contract("whitelist.E116", "engineio.Server._handle_connect (OPEN)", ERROR, _open_packet),
    Contract("whitelist.W101", "engineio.Server._log_error_once", WARNING, _closed_session_log),
    Contract("whitelist.W102", "eventlet.websocket (wsgi.errors)", WARNING, _socket_shutdown_text),
    Contract("whitelist.W103", "socketio.RedisManager (its log)", WARNING, _redis_retry_text),
    Contract(
        "whitelist.W104",
        "socketio.Server._handle_eio_message",
        WARNING,
        _decodes_through_packet_class,
    ),
)


@functools.cache
def verify(async_mode: str) -> tuple[Breach, ...]:
    """The contracts that do not hold for ``async_mode`` (cached: upstream code stays put)."""
    breaches = []
    for contract in CONTRACTS:
        try:
            contract.check(Probe(async_mode))
        except Broken as broken:
            breaches.append(Breach(contract, str(broken)))
        except Exception as error:  # whatever a changed upstream raises is a breach too
            breaches.append(Breach(contract, f"{type(error).__name__}: {error}"))
    return tuple(breaches)


def ensure(async_mode: str) -> None:
    """Raise ``EngineContractError`` for broken contracts; log the warning-level ones."""
    breaches = verify(async_mode)
    errors = [breach for breach in breaches if breach.contract.severity == ERROR]
    for breach in breaches:
        if breach.contract.severity == WARNING:
            logger.warning("Engine contract %s; the hook stays, without effect", breach)
    if errors:
        raise EngineContractError(errors)
