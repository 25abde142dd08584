"""Each session's state from python-engineio's connect to its disconnect, in-process
(whitelist.engine.session_hooks).

The live tests prove that sessions are closed on time and leave no sleeping
ping timer behind; these fail in make check's seconds when a hook no longer
opens or drops the state, or the ping timer outlives its session under eventlet.
Sessions are opened through python-engineio's own WSGI handshake, in memory;
eventlet's green threads run on this thread's hub, which only these tests drive.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping
from typing import Any

import engineio
import eventlet
import eventlet.event
import gevent
import pytest
import socketio

from tests.engine_server import (
    DEADLINE,
    engine_server,
    handshake_environ,
    open_polling_session,
    returns_in_time,
)
from whitelist.engine import session_hooks, sessions
from whitelist.engine.ping_timers import GeventPingTimer, PingTimer
from whitelist.engine.session_hooks import (
    hook_sessions,
    initialize_manager,
    track_ping_timers,
)
from whitelist.engine.sessions import EngineSession, EngineSessions
from whitelist.engine.sockets import close_engineio_session

ORIGIN = "https://shop.example.com"


class Host:
    """What the session hooks need of a ``GuardHost``, around a real python-engineio server.

    The Engine.IO handlers python-socketio would register record their calls.
    """

    def __init__(self, eio: engineio.Server, *, allowed: bool = True) -> None:
        self.eio = eio
        self.sessions = EngineSessions(eio)
        self.allowed = allowed
        self.sweepers_started = 0
        self.connects: list[tuple[str, Mapping[str, Any]]] = []
        self.disconnects: list[tuple[str, str]] = []
        self.accept: Any = None
        self.disconnect_error: Exception | None = None
        eio.on("connect", self.upstream_connect)
        eio.on("disconnect", self.upstream_disconnect)

    def upstream_connect(self, eio_sid: str, environ: Mapping[str, Any]) -> Any:
        self.connects.append((eio_sid, environ))
        return self.accept

    def upstream_disconnect(self, eio_sid: str, reason: str) -> None:
        self.disconnects.append((eio_sid, reason))
        if self.disconnect_error is not None:
            raise self.disconnect_error

    def handshake_allowed(self, environ: Mapping[str, Any]) -> bool:
        return self.allowed

    def start_session_sweeper(self) -> None:
        self.sweepers_started += 1


@pytest.fixture
def host() -> Host:
    host = Host(engine_server("threading"))
    hook_sessions(host)
    return host


def state_of(host: Host, sid: str) -> EngineSession:
    state = host.sessions.get(sid)
    assert state is not None, f"no state for {sid}"
    return state


# -- hook_sessions --------------------------------------------------------------------


def test_an_accepted_session_gets_its_state_with_the_handshakes_origin(host: Host) -> None:
    sid = open_polling_session(host.eio, ORIGIN)
    assert state_of(host, sid).origin == ORIGIN
    assert [connected for connected, _ in host.connects] == [sid]
    assert host.connects[0][1]["HTTP_ORIGIN"] == ORIGIN
    assert host.sweepers_started == 1
    assert host.sessions.pending_deadlines() == 1


def test_a_handshake_from_a_refused_origin_gets_the_shorter_connect_deadline() -> None:
    host = Host(engine_server("threading"), allowed=False)
    hook_sessions(host)
    sid = open_polling_session(host.eio, "https://evil.example.net")
    assert state_of(host, sid).connect_budget == sessions.REFUSED_CONNECT_SECONDS


def test_a_session_the_upstream_handler_refuses_gets_no_state(host: Host) -> None:
    host.accept = False
    statuses: list[str] = []
    host.eio.handle_request(
        handshake_environ(ORIGIN), lambda status, *rest: statuses.append(status)
    )
    assert statuses == ["401 UNAUTHORIZED"]
    assert len(host.connects) == 1
    assert len(host.sessions) == 0
    assert host.sweepers_started == 0


def test_a_closed_session_drops_its_state(host: Host) -> None:
    sid = open_polling_session(host.eio, ORIGIN)
    close_engineio_session(host.eio, sid, abort=False)
    assert host.sessions.get(sid) is None
    assert host.sessions.pending_deadlines() == 0
    assert host.disconnects == [(sid, host.eio.reason.SERVER_DISCONNECT)]


def test_the_state_is_dropped_even_when_the_upstream_disconnect_raises(host: Host) -> None:
    sid = open_polling_session(host.eio, ORIGIN)
    host.disconnect_error = RuntimeError("a handler bug")
    with pytest.raises(RuntimeError, match="a handler bug"):
        host.eio.handlers["disconnect"](sid, host.eio.reason.CLIENT_DISCONNECT)
    assert host.sessions.get(sid) is None


def test_the_other_sessions_keep_their_state(host: Host) -> None:
    closed, kept = open_polling_session(host.eio, ORIGIN), open_polling_session(host.eio, ORIGIN)
    close_engineio_session(host.eio, closed, abort=False)
    assert host.sessions.get(kept) is not None


def test_the_servers_disconnect_of_a_session_never_waits_for_its_client(host: Host) -> None:
    """python-socketio's own disconnects call it: upstream's waits for a poll that never comes."""
    sid = open_polling_session(host.eio, ORIGIN)
    socket = host.eio.sockets[sid]
    assert returns_in_time(lambda: host.eio.disconnect(sid))
    assert [packet.packet_type for packet in socket.poll()] == [engineio.packet.CLOSE]


def test_the_servers_disconnect_of_every_session_never_waits_either(host: Host) -> None:
    sids = [open_polling_session(host.eio, ORIGIN) for _ in range(3)]
    assert returns_in_time(host.eio.disconnect)
    assert host.eio.sockets == {}
    assert [sid for sid, _ in host.disconnects] == sids
    assert len(host.sessions) == 0


# -- ping timers (eventlet) -----------------------------------------------------------


@contextlib.contextmanager
def hooked_green_host(ping_interval: float = 25) -> Iterator[Host]:
    """An eventlet server hooked as ``install()`` hooks it; its green threads and ping
    timers end with the block."""
    eio = engine_server("eventlet", ping_interval=ping_interval)
    started: list[Any] = []
    start_background_task = eio.start_background_task

    def recording(target: Any, *args: Any, **kwargs: Any) -> Any:
        task = start_background_task(target, *args, **kwargs)
        started.append(task)
        return task

    eio.start_background_task = recording
    host = Host(eio)
    hook_sessions(host)
    track_ping_timers(host)
    try:
        yield host
    finally:
        for task in started:
            task.g.kill()
        for sid in list(eio.sockets):
            state = host.sessions.get(sid)
            if state is not None and isinstance(state.ping_timer, PingTimer):
                state.ping_timer.cancel()


@pytest.fixture
def green_host() -> Iterator[Host]:
    with hooked_green_host() as host:
        yield host


def ended(task: Any) -> bool:
    """Let the hub run until ``task``'s green thread has ended."""
    limit = time.monotonic() + DEADLINE
    while not task.g.dead and time.monotonic() < limit:
        eventlet.sleep(0)
    return task.g.dead


def running(task: Any) -> bool:
    """Let the hub run until ``task``'s green thread has started (it then sleeps)."""
    limit = time.monotonic() + DEADLINE
    while not (task.g or task.g.dead) and time.monotonic() < limit:
        eventlet.sleep(0)
    return bool(task.g)


def test_a_sessions_ping_is_a_hub_timer_noted_in_its_state(green_host: Host) -> None:
    """No green thread per session: a spawn, a switch and a sleep, 3 % of a connect."""
    sid = open_polling_session(green_host.eio, ORIGIN)
    ping_timer = state_of(green_host, sid).ping_timer
    assert isinstance(ping_timer, PingTimer)
    assert ping_timer.socket is green_host.eio.sockets[sid]
    assert not ping_timer.ended


def test_the_ping_timer_pings_as_python_engineio_would() -> None:
    with hooked_green_host(ping_interval=0.05) as host:
        sid = open_polling_session(host.eio, ORIGIN)
        socket = host.eio.sockets[sid]
        queued = socket.queue.qsize()
        limit = time.monotonic() + DEADLINE
        while socket.queue.qsize() == queued and time.monotonic() < limit:
            eventlet.sleep(0.01)
        assert socket.queue.qsize() == queued + 1
        assert socket.last_ping is not None
        assert state_of(host, sid).ping_timer.ended


def test_other_background_tasks_are_not_taken_for_ping_timers(green_host: Host) -> None:
    state = state_of(green_host, open_polling_session(green_host.eio, ORIGIN))
    ping_timer = state.ping_timer
    task = green_host.eio.start_background_task(print, "a task", sep="")
    assert task.target is print and task.args == ("a task",) and task.kwargs == {"sep": ""}
    assert state.ping_timer is ping_timer


def test_a_ping_timer_of_a_session_without_state_is_left_alone(green_host: Host) -> None:
    socket = engineio.socket.Socket(green_host.eio, "unknown")
    task = green_host.eio.start_background_task(socket._send_ping)
    assert task.target == socket._send_ping
    assert green_host.sessions.get("unknown") is None


def test_a_closed_sessions_ping_timer_is_cancelled(green_host: Host) -> None:
    """Its green thread slept out its 25 s holding the session: 130 MB per 12,000 connects."""
    sid = open_polling_session(green_host.eio, ORIGIN)
    timer = state_of(green_host, sid).ping_timer
    close_engineio_session(green_host.eio, sid, abort=False)
    assert timer.ended


@contextlib.contextmanager
def hooked_gevent_host(ping_interval: float = 25) -> Iterator[Host]:
    """A gevent server hooked as ``install()`` hooks it, on this thread's gevent hub."""
    host = Host(engine_server("gevent", ping_interval=ping_interval))
    hook_sessions(host)
    track_ping_timers(host)
    try:
        yield host
    finally:
        for sid in list(host.eio.sockets):
            state = host.sessions.get(sid)
            if state is not None and isinstance(state.ping_timer, GeventPingTimer):
                state.ping_timer.cancel()


def test_under_gevent_the_ping_is_a_loop_timer_that_pings_as_python_engineio_would() -> None:
    """No sleeping greenlet per open session (each held 19 KiB more than under eventlet)."""
    with hooked_gevent_host(ping_interval=0.05) as host:
        sid = open_polling_session(host.eio, ORIGIN)
        timer = state_of(host, sid).ping_timer
        assert isinstance(timer, GeventPingTimer) and timer.socket is host.eio.sockets[sid]
        socket = host.eio.sockets[sid]
        queued = socket.queue.qsize()
        limit = time.monotonic() + DEADLINE
        while socket.queue.qsize() == queued and time.monotonic() < limit:
            gevent.sleep(0.01)
        assert socket.queue.qsize() == queued + 1
        assert socket.last_ping is not None
        assert timer.ended


def test_under_gevent_a_closed_sessions_ping_timer_is_cancelled() -> None:
    with hooked_gevent_host() as host:
        sid = open_polling_session(host.eio, ORIGIN)
        timer = state_of(host, sid).ping_timer
        assert not timer.ended
        close_engineio_session(host.eio, sid, abort=False)
        assert timer.ended


def test_an_open_sessions_ping_timer_runs_on(green_host: Host) -> None:
    closed, kept = open_polling_session(green_host.eio), open_polling_session(green_host.eio)
    timers = {sid: state_of(green_host, sid).ping_timer for sid in (closed, kept)}
    close_engineio_session(green_host.eio, closed, abort=False)
    assert timers[closed].ended and not timers[kept].ended


def test_a_ping_task_of_the_admin_ui_keeps_its_green_thread_and_ends_with_the_session(
    green_host: Host,
) -> None:
    """python-socketio's admin UI wraps _send_ping to report each ping: that one is run."""
    sid = open_polling_session(green_host.eio, ORIGIN)
    socket = green_host.eio.sockets[sid]
    state = state_of(green_host, sid)
    state.ping_timer.cancel()
    task = green_host.eio.start_background_task(functools.partial(socket._send_ping))
    assert state.ping_timer is task
    assert running(task)
    close_engineio_session(green_host.eio, sid, abort=False)
    queued = socket.queue.qsize()
    assert ended(task)
    assert socket.queue.qsize() == queued


# -- _kill ----------------------------------------------------------------------------


def green_task(target: Any) -> Any:
    """A task as python-engineio starts one under eventlet (its green thread in ``.g``).

    Its ``join()`` returns at once until the hub has started the green thread: wait on ``.g``.
    """
    task = engine_server("eventlet")._async["thread"](target=target)
    task.start()
    return task


def test_kill_wakes_a_sleeping_green_thread_to_end_on_its_own() -> None:
    """Woken, not killed: raising GreenletExit into it cost 4 % of a connect."""
    asleep = eventlet.event.Event()

    def sleeper() -> str:
        asleep.send(True)
        eventlet.sleep(60)
        return "returned"

    task = green_task(sleeper)
    asleep.wait()
    session_hooks._kill(task)
    assert ended(task)
    assert task.g.wait() == "returned"


def test_kill_stops_a_green_thread_that_has_not_started() -> None:
    """Started later, it would sleep its 25 s."""
    ran: list[bool] = []
    task = green_task(lambda: ran.append(True))
    session_hooks._kill(task)
    assert task.g.dead
    eventlet.sleep(0)
    assert ran == []


def test_kill_never_kills_the_green_thread_it_runs_in() -> None:
    """A ping timer may close its own session (a ping timeout): it must finish what it does."""
    finished: list[bool] = []
    tasks: list[Any] = []

    def closing_itself() -> None:
        session_hooks._kill(tasks[0])
        finished.append(True)

    tasks.append(green_task(closing_itself))
    tasks[0].g.wait()
    assert finished == [True]


def test_kill_leaves_finished_and_threaded_tasks_alone() -> None:
    task = green_task(lambda: None)
    task.g.wait()
    session_hooks._kill(task)
    session_hooks._kill(engine_server("threading")._async["thread"](target=print))
    session_hooks._kill(None)
    assert task.g.dead


# -- initialize_manager ---------------------------------------------------------------


def test_the_client_manager_is_initialised_once(monkeypatch: pytest.MonkeyPatch) -> None:
    server = socketio.Server(async_mode="threading")
    calls: list[None] = []
    monkeypatch.setattr(server.manager, "initialize", lambda: calls.append(None))
    initialize_manager(server)
    initialize_manager(server)
    assert server.manager_initialized
    assert len(calls) == 1


def test_a_manager_python_socketio_initialised_is_not_initialised_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = socketio.Server(async_mode="threading")
    server.manager_initialized = True
    calls: list[None] = []
    monkeypatch.setattr(server.manager, "initialize", lambda: calls.append(None))
    initialize_manager(server)
    assert calls == []
