"""The engine layer's start-up self-test: every upstream assumption holds, or the server stops."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from engineio import packet as eio_packet
from engineio.socket import Socket

from harness.live import ROOT, free_port, server_env
from tests.inprocess import MODES
from whitelist import GuardedServer
from whitelist.engine import contracts, logs, ping_timers


@pytest.fixture(autouse=True)
def fresh_verdicts() -> Iterator[None]:
    """Each test judges the upstream code as it stands in that test."""
    contracts.verify.cache_clear()
    yield
    contracts.verify.cache_clear()


def environ_copy(self: Any, sid: str, namespace: str | None = None) -> Any:
    environ = self.environ.get(self.manager.eio_sid_from_sid(sid, namespace or "/"))
    return dict(environ) if environ is not None else None


def no_ping_through_background_tasks(self: Any) -> None:
    """A release that runs the ping loop some other way: no timer to track."""


def ping_loop(self: Any) -> None:
    """A release whose ping task loops for as long as its session is not closed."""
    while not self.closed:
        self.server.sleep(self.server.ping_interval)
        if not self.closing:
            self.send(eio_packet.Packet(eio_packet.PING))


def ping_with_a_deadline(self: Any) -> None:
    """A release whose ping also starts the pong deadline itself."""
    self.server.sleep(self.server.ping_interval)
    if not self.closing and not self.closed:
        self.last_ping = time.time()
        self.pong_deadline = self.last_ping + self.server.ping_timeout
        self.send(eio_packet.Packet(eio_packet.PING))


def renamed_binary_packet(self: Any, *args: Any, **kwargs: Any) -> None:
    original_init(self, *args, **kwargs)
    self._pending_binary = self.__dict__.pop("_binary_packet")


original_init = socketio.Server.__init__


def trigger_event_with_kwargs(self: Any, event: str, *args: Any, namespace: str = "/") -> Any:
    return None


def logging_through_a_callable(self: Any, *args: Any, **kwargs: Any) -> None:
    """A release that logs through something other than a ``logging.Logger``."""
    original_init(self, *args, **kwargs)
    self.logger = print


def json_after_any_type(self: Any, encoded_packet: Any) -> None:
    """A release that reads JSON after a packet's type whatever follows it."""
    self.binary, self.packet_type = False, int(encoded_packet[0])
    try:
        self.data = json.loads(encoded_packet[1:])
    except ValueError:
        self.data = encoded_packet[1:]


original_send = Socket.send


def open_with_a_new_field(self: Any, pkt: Any) -> None:
    """A release that tells a new session one more setting in its OPEN packet."""
    if pkt.packet_type == eio_packet.OPEN:
        pkt.data = {**pkt.data, "maxBinaryAttachments": 10}
    original_send(self, pkt)


# (contract id, what to replace, with what): each a plausible upstream change.
BREAKAGES: list[tuple[str, Any, str, Callable[..., Any]]] = [
    ("whitelist.E102", socketio.Server, "get_environ", environ_copy),
    ("whitelist.E104", socketio.Server, "__init__", renamed_binary_packet),
    ("whitelist.E106", socketio.Server, "_trigger_event", trigger_event_with_kwargs),
    ("whitelist.E109", Socket, "schedule_ping", no_ping_through_background_tasks),
    ("whitelist.E109", Socket, "_send_ping", ping_loop),
    ("whitelist.E111", eio_packet.Packet, "decode", json_after_any_type),
    ("whitelist.E114", socketio.Server, "__init__", logging_through_a_callable),
    ("whitelist.E116", Socket, "send", open_with_a_new_field),
]


@pytest.mark.parametrize("mode", MODES)
def test_every_contract_holds_on_the_installed_releases(mode: str) -> None:
    assert [str(breach) for breach in contracts.verify(mode)] == []


@pytest.mark.parametrize(("check_id", "owner", "name", "replacement"), BREAKAGES)
def test_a_broken_assumption_stops_the_server_with_a_named_error(
    monkeypatch: pytest.MonkeyPatch,
    check_id: str,
    owner: Any,
    name: str,
    replacement: Callable[..., Any],
) -> None:
    monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(contracts.EngineContractError) as raised:
        GuardedServer(async_mode="eventlet")
    named = {breach.contract.check_id: breach.contract.symbol for breach in raised.value.breaches}
    assert check_id in named
    assert f"{check_id}: {named[check_id]}: " in str(raised.value)


def test_a_copied_environ_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socketio.Server, "get_environ", environ_copy)
    with pytest.raises(
        contracts.EngineContractError, match="socketio.Server.get_environ"
    ) as raised:
        GuardedServer(async_mode="eventlet")
    assert "get_environ() returns a copy" in str(raised.value)


@pytest.mark.django_db
def test_manage_py_check_reports_a_broken_assumption_as_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socketio.Server, "get_environ", environ_copy)
    with pytest.raises(SystemCheckError, match=r"whitelist\.E102"):
        call_command("check")


def test_a_changed_log_text_is_a_warning_not_a_refusal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(logs, "CLOSED_SESSION_RACE", "Words python-engineio never used")
    with caplog.at_level(logging.WARNING, logger="whitelist.engine.contracts"):
        GuardedServer(async_mode="threading")
    assert "whitelist.W101: engineio.Server._log_error_once" in caplog.text


def test_a_release_decoding_some_other_way_is_a_warning_not_a_refusal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Then each message is decoded twice again: slower, no less guarded."""
    handle = socketio.Server._handle_eio_message

    def decoding_with_the_base_class(self: Any, eio_sid: str, data: Any) -> Any:
        packet_class = self.packet_class
        self.packet_class = socketio.packet.Packet
        try:
            return handle(self, eio_sid, data)
        finally:
            self.packet_class = packet_class

    monkeypatch.setattr(socketio.Server, "_handle_eio_message", decoding_with_the_base_class)
    with caplog.at_level(logging.WARNING, logger="whitelist.engine.contracts"):
        GuardedServer(async_mode="threading")
    assert "whitelist.W104: socketio.Server._handle_eio_message" in caplog.text


SHIM = """\
import socketio


def get_environ(self, sid, namespace=None):
    environ = self.environ.get(self.manager.eio_sid_from_sid(sid, namespace or "/"))
    return dict(environ) if environ is not None else None


socketio.Server.get_environ = get_environ
"""


@pytest.mark.live
@pytest.mark.timeout(60)
def test_runsocket_refuses_to_start_on_a_changed_upstream(tmp_path: Path) -> None:
    """A start-up shim makes get_environ return a copy: the server names it and stops."""
    (tmp_path / "sitecustomize.py").write_text(SHIM)
    env = server_env(tmp_path / "db.sqlite3", PYTHONPATH=f"{tmp_path}:{ROOT}")
    result = subprocess.run(
        [sys.executable, "manage.py", "runsocket", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert result.returncode != 0
    assert "whitelist.E102" in result.stderr
    assert "socketio.Server.get_environ" in result.stderr
    assert "Quit with CONTROL-C" not in result.stdout


def test_the_guarded_server_keeps_every_attribute_python_socketio_sets() -> None:
    """A subclass attribute named like one of python-socketio's (``namespaces``) breaks it."""
    plain = vars(socketio.Server(async_mode="threading"))
    guarded = vars(GuardedServer(async_mode="threading"))
    changed = [name for name, value in plain.items() if type(guarded.get(name)) is not type(value)]
    assert changed == []


def test_the_ping_timer_contract_guards_eventlet_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only eventlet's ping timers are tracked: a threading server needs none of it."""
    monkeypatch.setattr(Socket, "schedule_ping", no_ping_through_background_tasks)
    GuardedServer(async_mode="threading")
    assert [breach.contract.check_id for breach in contracts.verify("eventlet")] == [
        "whitelist.E109"
    ]


def test_a_ping_that_does_more_than_ping_timers_stops_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A release whose _send_ping does more: ping_timers would silently skip the rest."""
    monkeypatch.setattr(Socket, "_send_ping", ping_with_a_deadline)
    monkeypatch.setattr(ping_timers, "UPSTREAM_SEND_PING", ping_with_a_deadline)
    with pytest.raises(contracts.EngineContractError) as raised:
        GuardedServer(async_mode="eventlet")
    assert "whitelist.E109" in str(raised.value)
    assert "pong_deadline" in str(raised.value)


def test_gevent_hiding_an_upgrades_socket_stops_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gevent release whose upgrade stream no longer leads to the socket (E115)."""
    from gevent import pywsgi

    original = pywsgi.WSGIHandler.get_environ

    def buffered_copy(self: Any) -> dict[str, Any]:
        environ = original(self)
        environ["wsgi.input"] = io.BytesIO()
        return environ

    monkeypatch.setattr(pywsgi.WSGIHandler, "get_environ", buffered_copy)
    with pytest.raises(contracts.EngineContractError, match="whitelist.E115: gevent.pywsgi"):
        GuardedServer(async_mode="gevent")
