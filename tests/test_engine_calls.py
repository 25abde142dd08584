"""Real connect and disconnect calls told from client events, in-process (whitelist.engine.calls).

python-socketio dispatches a client's event named ``connect`` or ``disconnect``
to those very handlers. tests/test_socketio.py proves that none reaches an
application's handler through a served ``GuardedServer``; here a plain
``socketio.Server`` dispatches in memory (packets posted through its own WSGI
entry point) and each handler call is read with ``connect_call`` and
``disconnect_call`` as it happens.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import socketio

from tests.engine_server import handshake_environ
from whitelist.engine.calls import (
    CATCH_ALL,
    ConnectCall,
    DisconnectCall,
    connect_call,
    disconnect_call,
    readings,
)

ORIGIN = "https://shop.example.com"


class Dispatching:
    """A plain python-socketio server whose connect and disconnect handlers read their calls."""

    def __init__(self, registered: str = "/") -> None:
        self.server = socketio.Server(
            async_mode="threading", async_handlers=False, logger=False, engineio_logger=False
        )
        self.server.eio.cors_allowed_origins = []
        # What GuardedServer keeps of the sockets it admitted, by (namespace, sid).
        self.server.open_sockets = set()  # type: ignore[attr-defined]
        self.connects: list[ConnectCall | None] = []
        self.disconnects: list[DisconnectCall | None] = []
        self.server.on("connect", self.on_connect, namespace=registered)
        self.server.on("disconnect", self.on_disconnect, namespace=registered)
        self.registered = registered
        self.eio_sid = ""
        self.environ: dict[str, Any] = {}

    def on_connect(self, *args: Any) -> Any:
        call = connect_call(self.server, self.registered, args)  # type: ignore[arg-type]
        self.connects.append(call)
        if call is not None:
            self.server.open_sockets.add((call.namespace, call.sid))  # type: ignore[attr-defined]
        return None

    def on_disconnect(self, *args: Any) -> None:
        call = disconnect_call(self.server, self.registered, args)  # type: ignore[arg-type]
        self.disconnects.append(call)

    def open(self, connect: str = "40") -> str:
        """Open an Engine.IO session and connect "/" as a client would; the socket's sid."""
        self.environ = handshake_environ(ORIGIN)
        body = self.server.handle_request(self.environ, lambda *answer: None)
        self.eio_sid = json.loads(body[0].decode()[1:])["sid"]
        self.post(connect)
        sid = self.server.manager.sid_from_eio_sid(self.eio_sid, "/")
        assert sid is not None
        return str(sid)

    def post(self, payload: str) -> None:
        data = payload.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "QUERY_STRING": f"EIO=4&transport=polling&sid={self.eio_sid}",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
        }
        statuses: list[str] = []
        self.server.handle_request(environ, lambda status, *rest: statuses.append(status))
        assert statuses == ["200 OK"]


@pytest.mark.parametrize("registered", ["/", CATCH_ALL])
def test_a_real_connect_is_read_with_its_namespace_sid_environ_and_auth(registered: str) -> None:
    app = Dispatching(registered)
    sid = app.open('40{"token":"t"}')
    prefix = ("/",) if registered == CATCH_ALL else ()
    assert app.connects == [ConnectCall("/", prefix, sid, app.environ, {"token": "t"})]
    call = app.connects[0]
    assert call is not None and call.environ is app.environ
    assert call.arguments() == (*prefix, sid, app.environ, {"token": "t"})


@pytest.mark.parametrize("registered", ["/", CATCH_ALL])
def test_a_client_event_named_connect_is_no_connect(registered: str) -> None:
    app = Dispatching(registered)
    app.open()
    for event in (
        ["connect", {"HTTP_ORIGIN": ORIGIN}],
        ["connect", {"HTTP_ORIGIN": ORIGIN}, {"token": "t"}],
        ["connect"],
        ["connect", "/", {"HTTP_ORIGIN": ORIGIN}],
    ):
        app.post("42" + json.dumps(event))
    assert len(app.connects) == 5
    assert app.connects[1:] == [None, None, None, None]


def test_a_copy_of_the_environ_is_no_connect() -> None:
    """Only python-socketio holds the very environ it stored: a client can only send a copy."""
    app = Dispatching()
    sid = app.open()
    assert connect_call(app.server, "/", (sid, dict(app.environ))) is None  # type: ignore[arg-type]
    assert connect_call(app.server, "/", (sid, app.environ)) is not None  # type: ignore[arg-type]
    assert connect_call(app.server, "/", (sid, None)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("registered", ["/", CATCH_ALL])
def test_a_real_disconnect_is_read_with_its_reason(registered: str) -> None:
    app = Dispatching(registered)
    sid = app.open()
    app.post("41")
    prefix = ("/",) if registered == CATCH_ALL else ()
    reason = app.server.reason.CLIENT_DISCONNECT
    assert app.disconnects == [DisconnectCall("/", prefix, sid, (reason,))]
    call = app.disconnects[0]
    assert call is not None and call.arguments() == (*prefix, sid, reason)


@pytest.mark.parametrize("registered", ["/", CATCH_ALL])
def test_a_client_event_named_disconnect_is_no_disconnect(registered: str) -> None:
    """The socket is still connected while a client's event runs; never during a disconnect."""
    app = Dispatching(registered)
    app.open()
    app.post('42["disconnect","client disconnect"]')
    app.post('42["disconnect"]')
    assert app.disconnects == [None, None]


def test_a_disconnect_of_a_socket_the_guard_never_admitted_is_no_disconnect() -> None:
    app = Dispatching()
    sid = app.open()
    app.server.open_sockets.clear()  # type: ignore[attr-defined]
    app.post("41")
    assert app.disconnects == [None]
    assert not app.server.manager.is_connected(sid, "/")


def test_a_catch_all_handler_is_read_with_and_without_the_namespace() -> None:
    assert readings(CATCH_ALL, ("/chat", "sid", "environ")) == [
        ("/chat", ("/chat",), ("sid", "environ")),
        (CATCH_ALL, (), ("/chat", "sid", "environ")),
    ]
    assert readings("/chat", ("sid", "environ")) == [("/chat", (), ("sid", "environ"))]
    assert readings(CATCH_ALL, ()) == [(CATCH_ALL, (), ())]


@pytest.mark.parametrize(
    "args",
    [(), ("sid",), (1, {}), (["sid"], {}), ("/", 1, {})],
    ids=["nothing", "sid alone", "number", "list", "catch-all number"],
)
def test_arguments_python_socketio_never_passes_are_no_call(args: tuple[Any, ...]) -> None:
    app = Dispatching(CATCH_ALL)
    assert connect_call(app.server, CATCH_ALL, args) is None  # type: ignore[arg-type]
    assert disconnect_call(app.server, CATCH_ALL, args) is None  # type: ignore[arg-type]
