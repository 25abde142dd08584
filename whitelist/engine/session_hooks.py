"""Each Engine.IO session's state, from python-engineio's connect to its disconnect.

python-socketio registers Engine.IO ``connect`` and ``disconnect`` handlers;
``hook_sessions`` wraps them (contracts ``whitelist.E101``, ``E105``) to open
and drop the session's ``EngineSession`` (its origin, its connect deadline),
and replaces the server's ``disconnect()`` with one that never waits for the
client. ``track_ping_timers`` knows each session's ping task
(``Socket._send_ping``, ``whitelist.E109``), runs it as a hub timer
(``ping_timers``) and ends it when the session closes under eventlet, where
it would otherwise sleep out its 25 s holding the session's objects: 12,000
connects in 10 s left 12,000 sleeping green threads and 130 MB until they
woke. python-engineio has no public hook for either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whitelist.engine import sockets
from whitelist.engine.host import GuardHost
from whitelist.rules.decision import request_origin


def hook_sessions(server: GuardHost) -> None:
    """Open a session's state when python-engineio accepts it, drop it when it closes.

    Called again after ``instrument()``, whose admin UI registers handlers of its own.
    """
    on_connect = server.eio.handlers["connect"]
    on_disconnect = server.eio.handlers["disconnect"]

    def connect(eio_sid: str, environ: Mapping[str, Any], *args: Any) -> Any:
        accepted = on_connect(eio_sid, environ, *args)
        if accepted is not False:
            allowed = server.handshake_allowed(environ)
            origin = request_origin(environ)
            server.sessions.opened(eio_sid, origin, allowed=allowed, environ=environ)
            server.start_session_sweeper()
        return accepted

    def disconnect(eio_sid: str, *args: Any) -> Any:
        try:
            return on_disconnect(eio_sid, *args)
        finally:
            state = server.sessions.ended(eio_sid)
            if state is not None and state.ping_timer is not None:
                _kill(state.ping_timer)

    server.eio.on("connect", connect)
    server.eio.on("disconnect", disconnect)
    # Server.disconnect(sid) waits until the client has polled what is queued: one
    # that never polls again held the calling thread for good.
    server.eio.disconnect = server.sessions.disconnect


def track_ping_timers(server: GuardHost) -> None:
    """Note each session's ping task in its state, so that its close can end it (green modes).

    python-engineio's own ``_send_ping`` becomes a ``PingTimer``; any other ping
    task (the admin UI's) keeps its green thread.
    """
    from whitelist.engine import ping_timers

    eio = server.eio
    start_background_task = eio.start_background_task

    def start_tracking_ping_timers(target: Any, *args: Any, **kwargs: Any) -> Any:
        socket = sockets.owning_socket(target)
        # python-engineio starts only its ping task this way
        state = server.sessions.get(socket.sid) if socket is not None else None
        if state is None:
            return start_background_task(target, *args, **kwargs)
        if ping_timers.is_upstream_ping(target) and not args and not kwargs:
            task = ping_timers.start(socket, eio.ping_interval, eio.async_mode)
        else:
            task = start_background_task(target, *args, **kwargs)
        state.ping_timer = task
        return task

    eio.start_background_task = start_tracking_ping_timers


def _kill(task: Any) -> None:
    """End a closed session's ping task: cancel its ``PingTimer``, or wake its green thread.

    python-engineio's eventlet thread keeps its green thread in ``.g``; woken from
    its sleep, it finds its session closing and returns (contract ``whitelist.E109``).
    Raising ``GreenletExit`` into it instead cost about 4 % of a connect.
    """
    cancel = getattr(task, "cancel", None)
    if cancel is not None:
        cancel()
        return
    if getattr(task, "g", None) is None and callable(getattr(task, "kill", None)):
        if not task.dead:  # gevent: the task is its greenlet (the admin UI's ping)
            task.kill(block=False)
        return
    green = getattr(task, "g", None)
    if green is None or green.dead:
        return
    import eventlet

    if green is eventlet.getcurrent():
        return
    if not green:  # not started: it would sleep its 25 s once it did
        green.kill()
        return
    eventlet.hubs.get_hub().schedule_call_global(0, green.switch)


def initialize_manager(server: Any) -> None:
    """Initialise the client manager (a message queue's listener) before any client connects.

    python-socketio does it at the first Engine.IO connect (``whitelist.E107``).
    """
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()
