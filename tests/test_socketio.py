"""whitelist.server.guarded in this process: the guard on a real server, in threading and
eventlet mode here and in gevent mode from tests/test_socketio_gevent.py.

Each test builds a ``GuardedServer``, registers handlers the way a project
would, serves it on a loopback port (Werkzeug threads or an eventlet hub) and
connects with python-socketio's client. ``make test`` also runs this module
on the lowest python-socketio and python-engineio versions of the tested range.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import requests
import socketio
import websocket
from django.test import override_settings

from harness.live import wait_until
from tests.clients import (
    Outcome,
    merged,
    polling_handshake,
    polling_post,
    try_connect,
    welcomed_websocket,
)
from tests.inprocess import MODES, serving
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine import messages
from whitelist.gate.origin_gate import OriginGate
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import AllowlistCache, allowlist
from whitelist.server.guarded import GuardedServer

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED = "https://shop.example.com"
KEPT = "https://kept.example.com"
REFUSED = "https://evil.example.net"
WELCOME = "Okay, you're cool."
REFUSAL = "Who invited you to this party?"
WAIT = 10


@pytest.fixture
def rules() -> None:
    """Two allowed origins, and no snapshot left from an earlier test."""
    AllowedOrigin.objects.create(pattern=ALLOWED)
    AllowedOrigin.objects.create(pattern=KEPT)
    allowlist.invalidate()


# gevent's run of the tests below is tests/test_socketio_gevent.py: make test gives each
# file to one worker, and all three modes in this one made it the suite's longest file.
FILE_MODES = [mode for mode in MODES if mode != "gevent"]


def guarded_server(async_mode: str) -> GuardedServer:
    # python-engineio can hold a long-poll GET that races the client's close until
    # ping_interval + ping_timeout (also without the guard): keep that short here.
    return GuardedServer(async_mode=async_mode, ping_interval=1, ping_timeout=2)


@pytest.fixture(params=FILE_MODES)
def server(request: pytest.FixtureRequest, rules: None) -> GuardedServer:
    """A guarded server in one async mode, with two allowed origins."""
    return guarded_server(request.param)


@pytest.fixture
def url(server: GuardedServer) -> Iterator[str]:
    app = OriginGate(socketio.WSGIApp(server))
    with serving(app, server.async_mode, before_stop=server.shutdown) as url:
        yield url


def attempt(url: str, origin: str, **kwargs: Any) -> Outcome:
    outcome, _ = try_connect(url, origin=origin, **kwargs)
    return outcome


def refused(outcome: Outcome, reason: str, origin: str | None) -> bool:
    return not outcome.connected and outcome.error == {
        "message": REFUSAL,
        "data": {"reason": reason, "origin": origin},
    }


# -- admitted and refused -------------------------------------------------------------


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_allowed_origin_is_welcomed_after_the_connect_is_acknowledged(
    server: GuardedServer, url: str, transport: str
) -> None:
    outcome = attempt(url, ALLOWED, transport=transport)
    # The recipe's plain message first (a page may write it straight in), then the details.
    assert outcome.welcome_args == (
        WELCOME,
        {"origin": ALLOWED, "rule": ALLOWED, "transport": transport},
    )
    assert outcome.hello is not None and outcome.hello["protocol"] == "ws://"
    assert outcome.order == ["connect", "permission.message", "hello.client"]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_refused_origin_gets_a_polite_connect_error_and_no_session(
    server: GuardedServer, url: str, transport: str
) -> None:
    calls: list[str] = []
    server.on("connect", lambda sid, environ: calls.append(sid))
    outcome = attempt(url, REFUSED, transport=transport)
    assert refused(outcome, "origin-not-allowed", REFUSED)
    assert outcome.events == [] and outcome.welcome is None
    assert calls == []
    assert len(server.open_sockets) == 0
    assert list(server.manager.get_participants("/", None)) == []


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_refused_origins_connect_is_answered_without_python_socketio(
    server: GuardedServer, url: str, transport: str
) -> None:
    """The guard sends the refusal itself: through python-socketio (a socket id allotted,
    the guard called, its refusal caught, the id taken back) it cost nearly an admission."""
    handled: list[str] = []
    handle_connect = server._handle_connect

    def spy(eio_sid: str, namespace: str, data: Any) -> Any:
        handled.append(namespace or "/")
        return handle_connect(eio_sid, namespace, data)

    server._handle_connect = spy  # type: ignore[method-assign]
    outcome = attempt(url, REFUSED, transport=transport)
    assert refused(outcome, "origin-not-allowed", REFUSED)
    assert handled == []
    counted = (
        'whitelist_connects_total{namespace="/",outcome="refused",reason="origin-not-allowed"} 1.0'
    )
    assert counted in server.metrics.exposition().decode()
    assert wait_until(lambda: len(server.sessions) == 0), "the refused session stayed open"
    # Allowed origins still go through python-socketio, which acknowledges them.
    assert attempt(url, ALLOWED, transport=transport).welcome is not None
    assert handled == ["/"]


def test_a_connect_after_a_rule_allowed_its_origin_is_welcomed(
    server: GuardedServer, url: str
) -> None:
    """A session opened while its origin was refused is judged again at its connect."""
    sid = polling_handshake(url, REFUSED)
    AllowedOrigin.objects.create(pattern=REFUSED)
    allowlist.invalidate()
    assert polling_post(url, sid, REFUSED, "40").status_code == 200
    answer = requests.get(
        f"{url}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": sid},
        headers={"Origin": REFUSED},
        timeout=10,
    )
    assert answer.text.startswith("40{") and "permission.message" in answer.text, answer.text


def test_a_refused_origins_connect_to_an_unknown_namespace_is_python_socketios_to_answer(
    server: GuardedServer, url: str
) -> None:
    """A namespace python-socketio does not take gets its own answer, as before the guard."""
    outcome = attempt(url, REFUSED, namespace="/nowhere")
    assert not outcome.connected and outcome.error == "Unable to connect"


def test_a_refused_origins_msgpack_connect_to_no_namespace_closes_its_session(
    rules: None,
) -> None:
    """msgpack may carry a namespace of any type: the guard hands it to python-socketio,
    which cannot decode it (the session closes); it raised in the guard, a traceback a
    message, and the session stayed open."""
    server = GuardedServer(async_mode="threading", serializer="msgpack")
    app = OriginGate(socketio.WSGIApp(server))
    with serving(app, "threading", before_stop=server.shutdown) as url:
        endpoint = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = websocket.create_connection(endpoint, origin=REFUSED, timeout=WAIT)
        try:
            assert ws.recv().startswith("0")
            ws.send_binary(msgpack.packb({"type": 0, "nsp": [1]}))
            # Before its refused origin's connect deadline (3 s) would close it.
            closed = wait_until(lambda: len(server.sessions) == 0, timeout=2)
            assert closed, "the session stayed open"
        finally:
            ws.close()


def test_an_open_socket_is_pinged_again_after_each_pong(server: GuardedServer, url: str) -> None:
    """Engine.IO's heartbeat (a hub timer under eventlet, engine.ping_timers): a client
    whose pings stopped would close after ping_interval + ping_timeout."""
    pings = 0
    with welcomed_websocket(url, ALLOWED) as ws:
        for _ in range(20):  # the two welcome events, then a ping a second
            if ws.recv() == "2":
                pings += 1
                ws.send("3")
                if pings == 3:
                    break
    assert pings == 3


def test_namespace_without_any_handler_is_guarded(server: GuardedServer, url: str) -> None:
    server.namespaces = "*"  # python-socketio then accepts every namespace
    assert refused(attempt(url, REFUSED, namespace="/anything"), "origin-not-allowed", REFUSED)
    assert attempt(url, ALLOWED, namespace="/anything").welcome is not None


def test_namespace_registered_after_clients_connected_is_guarded(
    server: GuardedServer, url: str
) -> None:
    assert attempt(url, ALLOWED).welcome is not None

    @server.on("connect", namespace="/late")
    def late_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        return True  # welcomes everybody: the guard must still run first

    assert refused(attempt(url, REFUSED, namespace="/late"), "origin-not-allowed", REFUSED)
    assert attempt(url, ALLOWED, namespace="/late").welcome is not None


def test_event_decorator_registers_a_guarded_connect(server: GuardedServer, url: str) -> None:
    seen: list[str] = []

    @server.event
    def connect(sid: str, environ: dict[str, Any]) -> None:
        seen.append(environ["HTTP_ORIGIN"])

    assert refused(attempt(url, REFUSED), "origin-not-allowed", REFUSED)
    assert attempt(url, ALLOWED).welcome is not None
    assert seen == [ALLOWED]


class ChatNamespace(socketio.Namespace):
    """A class-based namespace, as python-socketio's documentation writes one."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.connected: list[Any] = []
        self.disconnected: list[str] = []

    def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        self.connected.append(auth)

    def on_disconnect(self, sid: str, reason: str) -> None:
        self.disconnected.append(reason)

    def on_echo(self, sid: str, data: Any) -> Any:
        return data


def test_class_based_namespace_is_guarded(server: GuardedServer, url: str) -> None:
    chat = ChatNamespace("/chat")
    server.register_namespace(chat)
    assert refused(attempt(url, REFUSED, namespace="/chat"), "origin-not-allowed", REFUSED)
    assert chat.connected == []
    outcome, client = try_connect(url, origin=ALLOWED, namespace="/chat", auth={"t": 1}, keep=True)
    try:
        assert outcome.welcome is not None
        assert client.call("echo", "hi", namespace="/chat", timeout=WAIT) == "hi"
    finally:
        client.disconnect()
    assert chat.connected == [{"t": 1}]
    assert wait_until(lambda: len(chat.disconnected) == 1), chat.disconnected


def test_catch_all_class_namespace_is_guarded(server: GuardedServer, url: str) -> None:
    server.register_namespace(ChatNamespace("*"))
    server.namespaces = "*"
    assert refused(attempt(url, REFUSED, namespace="/room"), "origin-not-allowed", REFUSED)
    assert attempt(url, ALLOWED, namespace="/room").welcome is not None


# -- connect handlers: the three forms, with and without auth --------------------------


def form_two(calls: list[tuple[Any, ...]]) -> Callable[..., None]:
    def connect(sid: str, environ: dict[str, Any]) -> None:
        calls.append(())

    return connect


def form_three(calls: list[tuple[Any, ...]]) -> Callable[..., None]:
    def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        calls.append((auth,))

    return connect


def form_default(calls: list[tuple[Any, ...]]) -> Callable[..., None]:
    def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        calls.append((auth,))

    return connect


@pytest.mark.parametrize("auth", [None, {"token": "abc"}], ids=["no-auth", "auth"])
@pytest.mark.parametrize("form", [form_two, form_three, form_default])
def test_every_connect_handler_form_is_welcomed(
    server: GuardedServer, url: str, form: Callable[..., Any], auth: Any
) -> None:
    calls: list[tuple[Any, ...]] = []
    server.on("connect", form(calls), namespace="/form")
    outcome = attempt(url, ALLOWED, namespace="/form", auth=auth)
    assert outcome.welcome is not None, outcome.error
    assert calls == ([()] if form is form_two else [(auth,)])


def test_catch_all_connect_handler_gets_the_namespace(server: GuardedServer, url: str) -> None:
    seen: list[tuple[str, Any]] = []

    @server.on("connect", namespace="*")
    def any_connect(namespace: str, sid: str, environ: dict[str, Any], auth: Any) -> None:
        seen.append((namespace, auth))

    server.namespaces = "*"
    assert refused(attempt(url, REFUSED, namespace="/x"), "origin-not-allowed", REFUSED)
    assert attempt(url, ALLOWED, namespace="/x", auth={"a": 1}).welcome is not None
    assert seen == [("/x", {"a": 1})]


# -- every failure of a connect handler is a refusal -------------------------------------


def raise_runtime(sid: str, environ: dict[str, Any]) -> None:
    raise RuntimeError("a bug in a connect handler")


def raise_type_error(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    raise TypeError("a bug that happens to be a TypeError")


@pytest.mark.parametrize("handler", [raise_runtime, raise_type_error])
def test_connect_handler_error_is_a_refusal(
    server: GuardedServer, url: str, handler: Callable[..., Any]
) -> None:
    server.on("connect", handler, namespace="/broken")
    outcome = attempt(url, ALLOWED, namespace="/broken")
    assert refused(outcome, "internal-error", ALLOWED)
    assert len(server.open_sockets) == 0


def test_connect_handler_returning_false_refuses(server: GuardedServer, url: str) -> None:
    server.on("connect", lambda sid, environ: False, namespace="/no")
    outcome = attempt(url, ALLOWED, namespace="/no")
    assert not outcome.connected and outcome.welcome is None
    assert len(server.open_sockets) == 0


def test_builtin_connection_refused_error_is_a_refusal(server: GuardedServer, url: str) -> None:
    def refuse(sid: str, environ: dict[str, Any]) -> None:
        raise ConnectionRefusedError("members only")

    server.on("connect", refuse, namespace="/members")
    outcome = attempt(url, ALLOWED, namespace="/members")
    assert not outcome.connected
    assert outcome.error is not None and outcome.error["message"] == "members only"


def test_socketio_connection_refused_error_keeps_its_message_and_data(
    server: GuardedServer, url: str
) -> None:
    def refuse(sid: str, environ: dict[str, Any]) -> None:
        raise socketio.exceptions.ConnectionRefusedError("members only", {"plan": "free"})

    server.on("connect", refuse, namespace="/members")
    outcome = attempt(url, ALLOWED, namespace="/members")
    assert outcome.error == {"message": "members only", "data": {"plan": "free"}}


class DispatchingNamespace(socketio.Namespace):
    """A namespace that routes every event itself, as Flask-SocketIO's do."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.events: list[tuple[str, int]] = []

    def trigger_event(self, event: str, *args: Any) -> Any:
        self.events.append((event, len(args)))


def test_namespace_with_its_own_dispatch_gets_the_full_connect(
    server: GuardedServer, url: str
) -> None:
    custom = DispatchingNamespace("/custom")
    server.register_namespace(custom)
    assert refused(attempt(url, REFUSED, namespace="/custom"), "origin-not-allowed", REFUSED)
    assert attempt(url, ALLOWED, namespace="/custom").welcome is not None
    assert ("connect", 3) in custom.events


# -- client events named like reserved ones ---------------------------------------------


def test_client_events_named_connect_or_disconnect_never_reach_handlers(
    server: GuardedServer, url: str
) -> None:
    connects: list[Any] = []
    disconnects: list[Any] = []
    server.on("connect", lambda sid, environ, auth=None: connects.append(environ))
    server.on("disconnect", lambda sid, reason=None: disconnects.append(reason))
    server.on("ping_back", lambda sid: "pong")
    outcome, client = try_connect(url, origin=ALLOWED, keep=True)
    try:
        assert outcome.welcome is not None
        client.emit("connect", {"HTTP_ORIGIN": KEPT, "REMOTE_USER": "admin"})
        client.emit("disconnect", "client disconnect")
        assert client.call("ping_back", timeout=WAIT) == "pong"  # the two came before
        assert len(connects) == 1 and disconnects == []
        assert len(server.open_sockets) == 1
    finally:
        client.disconnect()
    # The real disconnect, once (its reason depends on how the transport closed).
    assert wait_until(lambda: len(disconnects) == 1)
    assert wait_until(lambda: len(server.open_sockets) == 0)


def test_each_event_is_decoded_once(
    server: GuardedServer, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard reads an event before python-socketio does: it hands its decode on."""
    decoded: list[str] = []
    decode = socketio.packet.Packet.decode

    def counting(self: Any, encoded_packet: Any) -> Any:
        if isinstance(encoded_packet, str) and "ping_back" in encoded_packet:
            decoded.append(encoded_packet)
        return decode(self, encoded_packet)

    server.on("ping_back", lambda sid: "pong")
    outcome, client = try_connect(url, origin=ALLOWED, keep=True)
    try:
        assert outcome.welcome is not None
        monkeypatch.setattr(socketio.packet.Packet, "decode", counting)
        assert client.call("ping_back", timeout=WAIT) == "pong"
    finally:
        client.disconnect()
    assert len(decoded) == 1, decoded


def test_handler_wrappers_refuse_forged_calls_on_their_own(server: GuardedServer, url: str) -> None:
    """The second line, for serializers the message hook does not decode (msgpack)."""
    calls: list[Any] = []
    server.on("connect", lambda sid, environ: calls.append("connect"))
    server.on("disconnect", lambda sid, reason=None: calls.append("disconnect"))
    outcome, client = try_connect(url, origin=ALLOWED, keep=True)
    try:
        assert outcome.welcome is not None
        (socket,) = server.open_sockets
        forged_environ = {"HTTP_ORIGIN": ALLOWED}
        # python-socketio takes anything but False from a connect handler as a welcome.
        assert server.handlers["/"]["connect"](socket.sid, forged_environ) is False
        assert server.handlers["/"]["disconnect"](socket.sid, "client disconnect") is None
        assert server.handlers["*"]["connect"]("/", socket.sid, forged_environ) is False
        assert server.handlers["*"]["disconnect"]("/", socket.sid, "forged") is None
        assert calls == ["connect"]
        assert len(server.open_sockets) == 1
    finally:
        client.disconnect()


@contextlib.contextmanager
def welcomed_msgpack_client(url: str) -> Iterator[socketio.Client]:
    """A msgpack client from the allowed origin, connected and welcomed; then disconnected."""
    client = socketio.Client(reconnection=False, serializer="msgpack")
    welcomed = threading.Event()
    client.on("permission.message", lambda *args: welcomed.set())
    try:
        client.connect(url, headers={"Origin": ALLOWED}, wait_timeout=WAIT)
        assert welcomed.wait(WAIT)
        yield client
    finally:
        client.disconnect()


def test_msgpack_clients_cannot_send_reserved_events_either(rules: None) -> None:
    """Other serializers reach the same message hook; binary frames, not text."""
    pytest.importorskip("msgpack")
    server = GuardedServer(
        async_mode="threading", serializer="msgpack", ping_interval=1, ping_timeout=2
    )
    connects: list[Any] = []
    server.on("connect", lambda sid, environ, auth=None: connects.append(sid))
    server.on("ping_back", lambda sid: "pong")
    app = OriginGate(socketio.WSGIApp(server))
    with (
        serving(app, "threading", server.shutdown) as url,
        welcomed_msgpack_client(url) as client,
    ):
        client.emit("connect", {"HTTP_ORIGIN": KEPT})
        assert client.call("ping_back", timeout=WAIT) == "pong"
        assert len(connects) == 1
        refused_client = socketio.Client(reconnection=False, serializer="msgpack")
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                refused_client.connect(url, headers={"Origin": REFUSED}, wait_timeout=WAIT)
        finally:
            refused_client.disconnect()
        assert len(connects) == 1


def test_a_packet_class_set_after_the_guard_is_the_one_the_guard_reads(rules: None) -> None:
    """An application that sets its serializer on the server later: the guard must read
    connects as python-socketio does, or no client is ever welcomed."""
    pytest.importorskip("msgpack")
    from socketio.msgpack_packet import MsgPackPacket

    server = GuardedServer(async_mode="threading", ping_interval=1, ping_timeout=2)
    server.packet_class = MsgPackPacket
    app = OriginGate(socketio.WSGIApp(server))
    with serving(app, "threading", server.shutdown) as url, welcomed_msgpack_client(url):
        pass  # welcomed: the guard saw the msgpack connect as a connect


def test_literal_catch_all_namespace_is_refused(rules: None) -> None:
    """python-socketio accepts the namespace "*" once a catch-all handler exists.

    The text encoding cannot name it (namespaces start with "/"); msgpack can.
    """
    pytest.importorskip("msgpack")
    server = GuardedServer(
        async_mode="threading", serializer="msgpack", ping_interval=1, ping_timeout=2
    )
    with serving(OriginGate(socketio.WSGIApp(server)), "threading", server.shutdown) as url:
        client = socketio.Client(reconnection=False, serializer="msgpack")
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                client.connect(url, headers={"Origin": ALLOWED}, namespaces=["*"], wait_timeout=3)
            assert len(server.open_sockets) == 0
        finally:
            client.disconnect()


# -- revocation ---------------------------------------------------------------------


def test_open_sockets_are_known_by_origin_and_revoked_when_their_rule_goes(
    server: GuardedServer, url: str
) -> None:
    outcome, client = try_connect(url, origin=ALLOWED, keep=True)
    kept, kept_client = try_connect(url, origin=KEPT, keep=True)
    revoked: list[dict[str, Any]] = []
    client.on("permission.revoked", lambda *args: revoked.append(merged(*args)))
    try:
        assert outcome.welcome is not None and kept.welcome is not None
        assert {socket.decision.origin for socket in server.open_sockets} == {ALLOWED, KEPT}
        AllowedOrigin.objects.filter(pattern=ALLOWED).delete()
        assert wait_until(lambda: not client.connected)
        expected = {"message": REFUSAL, "reason": "origin-not-allowed", "origin": ALLOWED}
        assert wait_until(lambda: revoked == [expected]), revoked
        assert kept_client.connected
        assert [socket.decision.origin for socket in server.open_sockets] == [KEPT]
    finally:
        client.disconnect()
        kept_client.disconnect()


def test_rule_removed_while_a_socket_connects_revokes_it_instead_of_welcoming(
    server: GuardedServer, url: str
) -> None:
    sids: list[str] = []

    def connect_while_staff_remove_the_rule(sid: str, environ: dict[str, Any]) -> None:
        sids.append(sid)
        AllowedOrigin.objects.filter(pattern=ALLOWED).delete()

    server.on("connect", connect_while_staff_remove_the_rule, namespace="/slow")
    outcome, client = try_connect(url, origin=ALLOWED, namespace="/slow", keep=True, timeout=3)
    try:
        assert outcome.welcome is None
        assert (
            "permission.revoked",
            (REFUSAL, {"reason": "origin-not-allowed", "origin": ALLOWED}),
        ) in outcome.events
        # Judged on the server: python-socketio's client can miss a disconnect that
        # arrives in the same poll as its connect ack (it ignores one before it has
        # marked itself connected), which made client.connected flaky here.
        assert wait_until(lambda: not server.manager.is_connected(sids[0], "/slow"))
        assert wait_until(lambda: len(server.open_sockets) == 0)
    finally:
        client.disconnect()


# -- python-socketio's admin UI ------------------------------------------------------


@pytest.fixture
def admin_reports(server: GuardedServer, url: str) -> Iterator[list[dict[str, Any]]]:
    """Instrument the server and watch its admin namespace as the admin UI would."""
    admin = server.instrument(auth=False, server_stats_interval=0.2)
    reports: list[dict[str, Any]] = []
    watcher = socketio.Client(reconnection=False)
    watching = threading.Event()

    @watcher.on("socket_connected", namespace="/admin")
    def on_socket_connected(socket: dict[str, Any], *_: Any) -> None:
        reports.append(socket)

    @watcher.on("config", namespace="/admin")
    def on_config(*_: Any) -> None:
        watching.set()

    watcher.connect(url, headers={"Origin": ALLOWED}, namespaces=["/admin"], wait_timeout=WAIT)
    try:
        assert watching.wait(WAIT)
        yield reports
    finally:
        watcher.disconnect()
        if server.async_mode == "threading":
            admin.shutdown()
        admin.uninstrument()


def test_admin_ui_never_shows_a_refused_socket(
    server: GuardedServer, url: str, admin_reports: list[dict[str, Any]]
) -> None:
    server.on("connect", lambda sid, environ: False, namespace="/closed")
    assert refused(attempt(url, REFUSED), "origin-not-allowed", REFUSED)
    assert not attempt(url, ALLOWED, namespace="/closed").connected
    assert attempt(url, KEPT).welcome is not None
    assert wait_until(lambda: any(report["nsp"] == "/" for report in admin_reports))
    origins = [report["handshake"]["headers"].get("origin") for report in admin_reports]
    assert REFUSED not in origins
    assert all(report["nsp"] != "/closed" for report in admin_reports)


def test_admin_ui_survives_a_client_event_named_disconnect(
    server: GuardedServer, url: str, admin_reports: list[dict[str, Any]]
) -> None:
    outcome, client = try_connect(url, origin=ALLOWED, keep=True)
    assert outcome.welcome is not None
    client.emit("disconnect", "client disconnect")
    client.disconnect()
    # Only the admin UI's own socket stays: the real disconnect went through.
    assert wait_until(lambda: [s.namespace for s in server.open_sockets] == ["/admin"])
    assert attempt(url, ALLOWED).welcome is not None


def test_admin_namespace_itself_is_guarded(
    server: GuardedServer, url: str, admin_reports: list[dict[str, Any]]
) -> None:
    assert refused(attempt(url, REFUSED, namespace="/admin"), "origin-not-allowed", REFUSED)


# -- construction ---------------------------------------------------------------------


def test_always_connect_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="always_connect"):
        GuardedServer(async_mode="threading", always_connect=True)


def test_engineio_cors_cannot_be_switched_back_on() -> None:
    with pytest.raises(ValueError, match="OriginGate"):
        GuardedServer(async_mode="threading", cors_allowed_origins="*")


def test_background_tasks_start_before_any_client(rules: None) -> None:
    """python-socketio would start the client manager only at the first connect."""
    server = GuardedServer(async_mode="threading")
    assert not server.manager_initialized
    server.start_background_tasks()
    try:
        assert server.manager_initialized
        assert server.tasks.started("allowlist watcher")
    finally:
        server.shutdown()


def test_a_crashed_allowlist_watcher_is_logged_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error must not end the watcher silently, leaving old rules for good."""
    runs: list[int] = []

    class CrashingOnce(AllowlistCache):
        def watch(self, sleep: Any, *, stop: Any, on_change: Any = None) -> None:
            runs.append(len(runs))
            if len(runs) == 1:
                raise RuntimeError("a bug nobody expected")
            while not stop():
                sleep(0.05)

    server = GuardedServer(async_mode="threading", allowlist_cache=CrashingOnce())
    server.tasks.start_allowlist_watcher()
    try:
        assert wait_until(lambda: len(runs) == 2)
    finally:
        server.tasks.stopping = True
    assert "The allowlist watcher crashed; restarting it in 1.0 s" in caplog.text


@pytest.mark.parametrize("origin", [ALLOWED, "https://evil.test"])
def test_a_session_sending_garbage_is_closed_and_logged_at_a_bounded_rate(
    server: GuardedServer,
    url: str,
    origin: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python-engineio logged an 18-line traceback per broken message and kept the session."""
    monkeypatch.setattr(messages, "malformed_log", RateLimitedLog(messages.logger))
    caplog.set_level(logging.DEBUG)
    endpoint = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(endpoint, origin=origin, timeout=10)
    try:
        assert ws.recv().startswith("0")
        ws.send("40")
        assert ws.recv()[:2] in ("40", "44")
        with contextlib.suppress(OSError, websocket.WebSocketException):
            for _ in range(100):
                ws.send_binary(b"\x00" * 39)

        def closed_by_the_server(seconds: float = 10) -> bool:
            """Read the welcome events, answering pings, until the server closes the session."""
            deadline = time.monotonic() + seconds
            try:
                while time.monotonic() < deadline:
                    message = ws.recv()
                    if not message:  # the close frame
                        return True
                    if message == "2":
                        ws.send("3")  # so that no ping timeout closes it instead
            except (TimeoutError, websocket.WebSocketTimeoutException):
                return False
            except (OSError, websocket.WebSocketException):
                return True
            return False

        assert closed_by_the_server()
    finally:
        ws.close()
        ws.shutdown()  # close() leaves the socket open once the server has closed it
    assert "message handler error" not in caplog.text
    closing = [r for r in caplog.records if "it sent a packet that is not Socket.IO" in r.message]
    warnings = [r for r in closing if r.levelno == logging.WARNING]
    # A refused session is closed right after its refusal: the garbage may never be read.
    assert (1 if origin == ALLOWED else 0) <= len(warnings) <= 10


def test_a_session_id_is_no_use_to_another_origin(server: GuardedServer, url: str) -> None:
    """Engine.IO knew a session by its sid alone: any page holding it could poll and post."""
    server.on("ping_back", lambda sid: "pong")
    outcome, client = try_connect(url, origin=ALLOWED, transport="polling", keep=True)
    try:
        assert outcome.welcome is not None
        session = requests.Session()
        session.trust_env = False
        endpoint = f"{url}/socket.io/?EIO=4&transport=polling&sid={client.eio.sid}"
        stolen = session.post(
            endpoint, data='42["ping_back"]', headers={"Origin": "https://evil.test"}, timeout=10
        )
        assert stolen.status_code == 403
        assert stolen.json() == {"message": "This session belongs to another origin."}
        assert client.call("ping_back", timeout=10) == "pong"  # the owner is not disturbed
    finally:
        client.disconnect()
    assert wait_until(lambda: len(server.sessions) == 0)  # forgotten with the session


FIVE_ATTACHMENTS = "55-" + json.dumps(
    ["big", *({"_placeholder": True, "num": n} for n in range(5))]
)


@pytest.mark.parametrize(
    ("header", "frames", "reason"),
    [
        ('55999999999-["big",{"_placeholder":true,"num":0}]', 1, "5999999999 binary attachments"),
        (FIVE_ATTACHMENTS, 5, "more than 2000000 bytes of attachments"),
    ],
    ids=["announced", "sent"],
)
@override_settings(WHITELIST_MAX_BINARY_BYTES=2_000_000)
def test_binary_attachments_beyond_the_caps_close_the_session(
    server: GuardedServer,
    url: str,
    header: str,
    frames: int,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client announcing 5,999,999,999 attachments and sending 40 of 999 KB grew the server."""
    monkeypatch.setattr(messages, "malformed_log", RateLimitedLog(messages.logger))
    caplog.set_level(logging.WARNING, logger="whitelist")
    with welcomed_websocket(url, ALLOWED) as ws:  # the caps apply to welcomed sockets too
        ws.send("4" + header)  # an Engine.IO message carrying the Socket.IO packet
        with contextlib.suppress(OSError, websocket.WebSocketException):
            for _ in range(frames):
                ws.send_binary(b"\x01" * 999_000)
        assert wait_until(lambda: reason in caplog.text)
    assert wait_until(lambda: len(server.sessions) == 0)


@override_settings(WHITELIST_MAX_BINARY_BYTES=2_000_000)
def test_text_attachments_between_binary_ones_count_toward_the_cap(
    server: GuardedServer,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """python-socketio takes a text message as an attachment too: it must not reset the count."""
    monkeypatch.setattr(messages, "malformed_log", RateLimitedLog(messages.logger))
    caplog.set_level(logging.WARNING, logger="whitelist")
    with welcomed_websocket(url, ALLOWED) as ws:
        ws.send("4" + FIVE_ATTACHMENTS)
        with contextlib.suppress(OSError, websocket.WebSocketException):
            for _ in range(3):
                ws.send_binary(b"\x01" * 999_000)
                ws.send("4x")  # a text attachment, 1 byte
        assert wait_until(lambda: "more than 2000000 bytes of attachments" in caplog.text)


@pytest.mark.parametrize("event", ['[{"name":"not a string"}]', "[7]", "[]", '{"a":1}'])
def test_an_event_without_a_string_name_is_dropped_not_an_error(
    server: GuardedServer, url: str, caplog: pytest.LogCaptureFixture, event: str
) -> None:
    """The fuzzer's '42[{...}]': python-socketio looked a JSON object up as an event name."""
    server.on("ping_back", lambda sid: "pong")
    caplog.set_level(logging.ERROR)
    with welcomed_websocket(url, ALLOWED) as ws:
        ws.send("42" + event)
        ws.send('421["ping_back"]')
        answers = [ws.recv() for _ in range(4)]  # the welcome, hello, then the ack
        assert '431["pong"]' in answers, answers
    assert "message handler error" not in caplog.text


def test_displaced_session_hooks_refuse_and_say_so(
    rules: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler registered over the guard's Engine.IO connect hook: nobody is let in silently."""
    server = GuardedServer(async_mode="threading")
    server.eio.on("connect", server._handle_eio_connect)  # python-socketio's own, unhooked
    caplog.set_level(logging.ERROR, logger="whitelist")
    app = OriginGate(socketio.WSGIApp(server))
    with serving(app, "threading", before_stop=server.shutdown) as url:
        assert attempt(url, ALLOWED, timeout=5).welcome is None
    assert "which the guard never saw open" in caplog.text


KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: 16 bytes in base64


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-WebSocket-Key": KEY}, 426),
        ({"Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Version": "13"}, 400),
        ({"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "not base64!"}, 400),
        ({"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "c2hvcnQ="}, 400),
    ],
    ids=["no version", "version 8", "no key", "key not base64", "key too short"],
)
def test_an_upgrade_that_is_not_rfc_6455_is_answered_before_any_session(
    server: GuardedServer, url: str, headers: dict[str, str], status: int
) -> None:
    """simple-websocket (threading, gevent) raised on these: HTTP 500 and a traceback."""
    response = requests.get(
        f"{url}/socket.io/",
        params={"EIO": "4", "transport": "websocket"},
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Origin": ALLOWED, **headers},
        timeout=10,
    )
    assert response.status_code == status, response.text
    if status == 426:
        assert response.headers["Sec-WebSocket-Version"] == "13"
    assert server.eio.sockets == {}


def test_an_open_sessions_upgrade_that_is_not_rfc_6455_is_answered_whatever_its_query_says(
    server: GuardedServer, url: str
) -> None:
    """python-engineio upgrades an open session on its Upgrade and Connection headers alone."""
    sid = polling_handshake(url, ALLOWED)
    response = requests.get(
        f"{url}/socket.io/",
        params={"EIO": "4", "transport": "", "sid": sid},
        headers={"Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Origin": ALLOWED},
        timeout=10,
    )
    assert response.status_code == 426, response.text


def test_an_upgrade_whose_client_leaves_at_the_probe_fails_as_an_upgrade(
    server: GuardedServer, url: str
) -> None:
    """python-engineio answers the probe unguarded: under threading and gevent a client gone
    by then raised out of the handler (HTTP 500, a traceback) and left the session
    "upgrading", its polls answered with nothing."""
    sid = polling_handshake(url, ALLOWED)
    endpoint = url.replace("http", "ws", 1) + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    for _ in range(5):  # the probe's answer must find the client gone at least once
        ws = websocket.create_connection(endpoint, origin=ALLOWED, timeout=10)
        ws.send("2probe")
        ws.sock.shutdown(socket.SHUT_RDWR)
        ws.sock.close()
        session = server.eio.sockets[sid]
        assert wait_until(lambda session=session: not session.upgrading), "still upgrading"
    assert not server.eio.sockets[sid].upgraded
    # The session still polls: the Socket.IO connect it sends is acknowledged.
    assert polling_post(url, sid, ALLOWED, "40").status_code == 200
    answer = requests.get(
        f"{url}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, timeout=10
    )
    assert "\x1e40{" in "\x1e" + answer.text  # after the probe's NOOPs, if any


def test_a_blank_transport_field_first_does_not_hide_a_websocket_upgrade(
    server: GuardedServer, url: str
) -> None:
    """python-engineio's parse_qs drops blank fields: "transport=&transport=websocket" is a
    WebSocket handshake to it, and reached simple-websocket without a key (a 500)."""
    response = requests.get(
        f"{url}/socket.io/",
        params=[("EIO", "4"), ("transport", ""), ("transport", "websocket")],
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Origin": ALLOWED},
        timeout=10,
    )
    assert response.status_code == 426, response.text
    assert server.eio.sockets == {}


def test_an_upgrade_without_a_host_is_answered_before_any_session(
    server: GuardedServer, url: str
) -> None:
    """wsproto refuses an upgrade without Host by raising: a 500 and a traceback."""
    port = int(url.rsplit(":", 1)[1])
    head = (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Origin: {ALLOWED}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(head.encode())
        answer = raw.recv(1024)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert server.eio.sockets == {}
