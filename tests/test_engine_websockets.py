"""The WebSocket packet check in-process (whitelist.engine.websockets).

tests/test_websocket.py proves on a live server that a message python-engineio
cannot decode closes the connection quietly; these fail in make check's seconds
when the check, its wiring into python-engineio's handler, or the per-server
driver table breaks.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import engineio
import pytest
from engineio.socket import Socket

from tests.engine_server import engine_server, open_polling_session
from tests.inprocess import MODES
from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.engine import websockets
from whitelist.engine.websockets import (
    EngineIOPacketsOnly,
    PacketCheckingHandler,
    use_guarded_websockets,
)

UNDECODABLE = ["", "bA", "4" + "[" * 5000, "2" + "[" * 5000]
UNDECODABLE_IDS = ["empty", "bad base64", "deep 4[", "deep 2["]


class ScriptedWebSocket:
    """A client's WebSocket as python-engineio's handler sees it: messages in, messages out."""

    def __init__(self, *messages: Any) -> None:
        self.incoming: Iterator[Any] = iter(messages)
        self.sent: list[Any] = []
        self.closed = False

    def wait(self) -> Any:
        return next(self.incoming, None)

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


def guard_host(eio: engineio.Server) -> SimpleNamespace:
    """What ``use_guarded_websockets`` needs of a ``GuardHost``."""
    return SimpleNamespace(eio=eio, preconnect_limit=lambda eio_sid: None)


@pytest.fixture
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rate limit of its own: other tests' malformed packets must not mute this one's."""
    monkeypatch.setattr(websockets, "malformed_log", RateLimitedLog(websockets.logger))


# -- EngineIOPacketsOnly --------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["4hello", "2probe", "5", "6", b"\x00\x01binary", "bAQID", "4" + "[" * 50],
    ids=["message", "ping", "upgrade", "noop", "binary", "base64", "shallow ["],
)
def test_an_engineio_message_passes_through_unchanged(message: Any) -> None:
    assert EngineIOPacketsOnly(ScriptedWebSocket(message), "s").wait() is message


def test_a_closed_connection_is_passed_on_as_none() -> None:
    assert EngineIOPacketsOnly(ScriptedWebSocket(), "s").wait() is None


@pytest.mark.parametrize("message", UNDECODABLE, ids=UNDECODABLE_IDS)
def test_a_message_python_engineio_cannot_decode_ends_the_connection(message: str) -> None:
    ws = ScriptedWebSocket(message, "4after")
    assert EngineIOPacketsOnly(ws, "s").wait() is None


@pytest.mark.usefixtures("fresh_log")
def test_the_end_is_logged_with_the_session_and_the_error_kind_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    EngineIOPacketsOnly(ScriptedWebSocket("bAsecret"), "the-sid").wait()
    (record,) = [r for r in caplog.records if r.name == websockets.logger.name]
    assert record.levelno == logging.WARNING
    assert "the-sid" in record.getMessage() and "(Error)" in record.getMessage()
    assert "secret" not in record.getMessage()


def test_everything_but_wait_reaches_the_wrapped_socket() -> None:
    """python-engineio's writer sends and closes through the very object it waits on."""
    ws = ScriptedWebSocket()
    checking = EngineIOPacketsOnly(ws, "s")
    checking.send("3probe")
    checking.close()
    assert ws.sent == ["3probe"] and ws.closed


# -- PacketCheckingHandler ------------------------------------------------------------


def test_the_handler_is_given_a_socket_that_checks_each_message() -> None:
    given: list[Any] = []
    PacketCheckingHandler(given.append)(ScriptedWebSocket(""))
    (ws,) = given
    assert isinstance(ws, EngineIOPacketsOnly)
    assert ws.wait() is None


def test_the_session_is_read_from_python_engineios_bound_handler() -> None:
    eio = engine_server()
    sid = open_polling_session(eio)
    handler = eio.sockets[sid]._websocket_handler
    assert PacketCheckingHandler(handler).eio_sid == sid
    wrapped = functools.partial(functools.partial(handler))
    assert PacketCheckingHandler(wrapped).eio_sid == sid


def test_the_session_is_read_through_the_admin_uis_partialmethod() -> None:
    """``instrument()`` swaps ``Socket._websocket_handler`` for a ``partialmethod``."""

    def reporting(socket: Socket, admin: object, ws: Any) -> Any:
        return Socket._websocket_handler(socket, ws)

    class Instrumented(Socket):
        _websocket_handler = functools.partialmethod(reporting, "admin")

    socket = Instrumented(engine_server(), "instrumented-sid")
    assert PacketCheckingHandler(socket._websocket_handler).eio_sid == "instrumented-sid"


def test_a_handler_of_no_session_gets_no_sid() -> None:
    assert PacketCheckingHandler(print).eio_sid == ""


# -- use_guarded_websockets -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_only_this_servers_driver_table_gets_the_guarded_websocket(mode: str) -> None:
    guarded, other = engine_server(mode), engine_server(mode)
    upstream = importlib.import_module(f"engineio.async_drivers.{mode}")._async
    upstream_websocket = upstream["websocket"]
    use_guarded_websockets(guard_host(guarded))
    assert guarded._async["websocket"] is not upstream_websocket
    assert upstream["websocket"] is upstream_websocket
    assert other._async["websocket"] is upstream_websocket
    assert engine_server(mode)._async["websocket"] is upstream_websocket
    rest = {name: value for name, value in guarded._async.items() if name != "websocket"}
    assert rest == {name: value for name, value in upstream.items() if name != "websocket"}


@pytest.mark.parametrize("mode", ["gevent", "threading"])
def test_simple_websocket_modes_get_the_wsproto_websocket_and_the_servers_budget(
    mode: str,
) -> None:
    """simple-websocket, python-engineio's choice here, ran without a message limit."""
    from whitelist.engine.wsproto_websocket import WSProtoWebSocket

    eio = engine_server(mode, max_http_buffer_size=4096)
    host = guard_host(eio)
    use_guarded_websockets(host)
    sid = open_polling_session(eio)
    connection = eio._async["websocket"](eio.sockets[sid]._websocket_handler, eio)
    assert isinstance(connection, WSProtoWebSocket)
    assert isinstance(connection.app, PacketCheckingHandler)
    assert connection.eio_sid == sid
    assert connection.preconnect_limit is host.preconnect_limit
    assert connection.message_limit == 4096


def test_eventlet_websockets_get_the_guarded_class_and_the_servers_budget() -> None:
    from whitelist.engine.eventlet_websocket import GuardedWebSocketWSGI

    eio = engine_server("eventlet", max_http_buffer_size=4096)
    host = guard_host(eio)
    use_guarded_websockets(host)
    sid = open_polling_session(eio)
    connection = eio._async["websocket"](eio.sockets[sid]._websocket_handler, eio)
    assert isinstance(connection, GuardedWebSocketWSGI)
    assert isinstance(connection.handler, PacketCheckingHandler)
    assert connection.eio_sid == sid
    assert connection.preconnect_limit is host.preconnect_limit
    assert connection.max_frame_length == 4096
    assert connection.support_legacy_versions is False


def upgrade(eio: engineio.Server, sid: str, *messages: Any) -> ScriptedWebSocket:
    """Run python-engineio's handler for an upgrade of ``sid`` that sends ``messages``."""
    ws = ScriptedWebSocket("2probe", "5", *messages)
    connection = eio._async["websocket"](eio.sockets[sid]._websocket_handler, eio)
    handler: Callable[[Any], Any] = connection.app
    assert handler(ws) == []
    return ws


@pytest.mark.parametrize("message", UNDECODABLE, ids=UNDECODABLE_IDS)
def test_an_undecodable_message_on_an_upgraded_session_closes_it_from_the_handler(
    message: str,
) -> None:
    """python-engineio raised out of its handler and left the session open."""
    eio = engine_server("threading", async_handlers=False)
    disconnects: list[str] = []
    eio.on("disconnect", lambda sid, reason: disconnects.append(reason))
    use_guarded_websockets(guard_host(eio))
    sid = open_polling_session(eio)
    socket = eio.sockets[sid]
    ws = upgrade(eio, sid, "4before", message, "4after")
    assert "3probe" in ws.sent
    assert list(ws.incoming) == ["4after"]
    assert socket.closed
    assert disconnects == [eio.reason.TRANSPORT_CLOSE]


def test_an_upgraded_session_still_gets_its_messages() -> None:
    eio = engine_server("threading", async_handlers=False)
    received: list[Any] = []
    eio.on("message", lambda sid, data: received.append(data))
    use_guarded_websockets(guard_host(eio))
    sid = open_polling_session(eio)
    upgrade(eio, sid, "4one", b"two", "bAQID")
    assert received == ["one", b"two", b"\x01\x02\x03"]
