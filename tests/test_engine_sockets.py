"""python-engineio's sessions as the guard closes and reads them (whitelist.engine.sockets).

Sessions here are real: opened through a python-engineio server's own WSGI
handshake, in memory. The live tests prove that a client that never polls again
holds no thread; these fail in make check's seconds when the close waits for it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import engineio
import pytest
from engineio.socket import Socket

from tests.engine_server import engine_server, open_polling_session, returns_in_time
from whitelist.engine import sockets
from whitelist.engine.sockets import close_engineio_session, forget_if_closed, owning_socket

# Generous: the close returns at once; the deadline only keeps a broken close from hanging.


@pytest.fixture
def eio() -> engineio.Server:
    return engine_server("threading")


@pytest.mark.parametrize("abort", [False, True])
def test_closing_a_polling_session_never_waits_for_its_client(
    eio: engineio.Server, abort: bool
) -> None:
    """``Socket.close(wait=True)`` waits for a poll that a client gone away never sends."""
    sid = open_polling_session(eio)
    socket = eio.sockets[sid]
    assert returns_in_time(lambda: close_engineio_session(eio, sid, abort=abort))
    assert socket.closed
    assert sid not in eio.sockets


def test_a_closed_session_runs_its_disconnect_handler_once_with_the_servers_reason(
    eio: engineio.Server,
) -> None:
    reasons: list[str] = []
    eio.on("disconnect", lambda sid, reason: reasons.append(reason))
    sid = open_polling_session(eio)
    close_engineio_session(eio, sid, abort=False)
    close_engineio_session(eio, sid, abort=False)
    assert reasons == [eio.reason.SERVER_DISCONNECT]


def test_a_close_that_is_not_aborted_tells_the_client_close(eio: engineio.Server) -> None:
    sid = open_polling_session(eio)
    socket = eio.sockets[sid]
    close_engineio_session(eio, sid, abort=False)
    assert [packet.packet_type for packet in socket.poll()] == [engineio.packet.CLOSE]


def test_an_aborted_close_queues_no_other_close(eio: engineio.Server) -> None:
    sid = open_polling_session(eio)
    socket = eio.sockets[sid]
    close_engineio_session(eio, sid, abort=True)
    assert socket.poll() == []


def test_a_disconnect_handler_that_raises_leaves_the_session_closed_and_gone(
    eio: engineio.Server,
) -> None:
    def failing(sid: str, reason: str) -> None:
        raise RuntimeError("a handler bug")

    eio.on("disconnect", failing)
    sid = open_polling_session(eio)
    socket = eio.sockets[sid]
    close_engineio_session(eio, sid, abort=False)
    assert socket.closed
    assert sid not in eio.sockets


def test_a_close_that_raises_is_logged_and_the_session_forgotten(
    eio: engineio.Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """python-engineio catches a handler's error itself; a release that did not still closes."""
    sid = open_polling_session(eio)

    def failing_dispatch(event: str, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a disconnect dispatch that fails")

    monkeypatch.setattr(eio, "_trigger_event", failing_dispatch)
    close_engineio_session(eio, sid, abort=False)
    assert sid not in eio.sockets
    (record,) = [r for r in caplog.records if r.name == sockets.logger.name]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == f"Closing Engine.IO session {sid} failed"


def test_closing_a_session_that_is_gone_does_nothing(eio: engineio.Server) -> None:
    sid = open_polling_session(eio)
    close_engineio_session(eio, "no-such-session", abort=False)
    assert list(eio.sockets) == [sid]


def test_the_other_sessions_stay_open(eio: engineio.Server) -> None:
    closed, kept = open_polling_session(eio), open_polling_session(eio)
    close_engineio_session(eio, closed, abort=False)
    assert list(eio.sockets) == [kept]
    assert sockets.engineio_socket(eio, kept) is eio.sockets[kept]


# -- forget_if_closed -----------------------------------------------------------------


def test_a_session_closed_but_still_listed_is_forgotten(eio: engineio.Server) -> None:
    """Its POSTs raised KeyError('Session is disconnected') in python-engineio: HTTP 500."""
    sid = open_polling_session(eio)
    eio.sockets[sid].close(wait=False, abort=True)
    assert sid in eio.sockets
    assert forget_if_closed(eio, sid)
    assert sid not in eio.sockets
    assert not forget_if_closed(eio, sid)


def test_an_open_or_closing_session_is_not_forgotten(eio: engineio.Server) -> None:
    sid = open_polling_session(eio)
    assert not forget_if_closed(eio, sid)
    eio.sockets[sid].closing = True
    assert not forget_if_closed(eio, sid)
    assert sid in eio.sockets
    assert not forget_if_closed(eio, "no-such-session")


# -- owning_socket --------------------------------------------------------------------


def test_the_socket_of_a_bound_method_is_found(eio: engineio.Server) -> None:
    socket = eio.sockets[open_polling_session(eio)]
    assert owning_socket(socket._websocket_handler) is socket
    assert owning_socket(socket._send_ping) is socket


def test_the_socket_is_found_through_nested_partials(eio: engineio.Server) -> None:
    socket = eio.sockets[open_polling_session(eio)]
    nested = functools.partial(functools.partial(functools.partial(socket._send_ping), 1), 2)
    assert owning_socket(nested) is socket


def test_the_socket_is_found_through_a_partialmethod(eio: engineio.Server) -> None:
    """python-socketio's admin UI swaps ``Socket`` methods for ``partialmethod``s."""

    def reporting_ping(socket: Socket, admin: object) -> None:
        """The admin UI's ping, with the admin UI bound first."""

    class Instrumented(Socket):
        _send_ping = functools.partialmethod(reporting_ping, "admin")

    socket = Instrumented(eio, "instrumented")
    assert owning_socket(socket._send_ping) is socket


class NotASocket:
    def method(self) -> None:
        """A bound method of something else."""


@pytest.mark.parametrize(
    "target",
    [
        print,
        lambda: None,
        NotASocket().method,
        functools.partial(NotASocket().method),
        Socket._send_ping,
        functools.partial(Socket._send_ping),
        None,
    ],
    ids=["builtin", "lambda", "method", "partial method", "unbound", "partial unbound", "None"],
)
def test_anything_but_a_socket_method_has_no_socket(target: Any) -> None:
    assert owning_socket(target) is None


def test_a_socket_method_passed_as_an_argument_makes_no_owner(eio: engineio.Server) -> None:
    socket = eio.sockets[open_polling_session(eio)]
    bound_to_the_server = functools.partial(eio.start_background_task, socket._send_ping)
    assert owning_socket(bound_to_the_server) is None
