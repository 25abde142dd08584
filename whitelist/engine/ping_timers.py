"""Engine.IO's ping under eventlet and gevent as a hub timer, not a sleeping green thread.

python-engineio starts a green thread per session that sleeps ``ping_interval``
(25 s) and then queues a PING (``Socket._send_ping``). On a busy site most
sessions close before that: each paid a spawn, a switch into the thread and a
sleep, and the guard a wake at the close so that the thread would not hold the
session for the rest of its 25 s (callgrind: about 80,000 instructions a
connect under eventlet); and every open session held a sleeping green thread. A
hub timer costs its schedule and its cancel. When it fires, the ping runs in a
green thread of its own, as python-engineio's would; ``ping`` does what
``_send_ping`` does after its sleep (contract ``whitelist.E109`` compares the
two at start-up). Imported in eventlet and gevent mode only.
"""

from __future__ import annotations

import time
from typing import Any

from engineio import packet as eio_packet
from engineio.socket import Socket

# Read at import: python-socketio's admin UI replaces it with a partialmethod of its
# own, whose ping the admin UI reports; such a ping task keeps its green thread.
UPSTREAM_SEND_PING = Socket._send_ping


def is_upstream_ping(target: Any) -> bool:
    """Is ``target`` a session's own ``_send_ping``, as python-engineio wrote it?"""
    return getattr(target, "__func__", None) is UPSTREAM_SEND_PING


def ping(socket: Any) -> None:
    """What ``Socket._send_ping`` does once its sleep is over."""
    if not socket.closing and not socket.closed:
        socket.last_ping = time.time()
        socket.send(eio_packet.Packet(eio_packet.PING))


class PingTimer:
    """One session's next ping, ``seconds`` from now, on eventlet's hub, until it is cancelled."""

    def __init__(self, socket: Any, seconds: float) -> None:
        import eventlet
        from eventlet import hubs

        self.socket = socket
        self._timer = hubs.get_hub().schedule_call_global(seconds, eventlet.spawn_n, ping, socket)

    @property
    def ended(self) -> bool:
        """Has it fired or been cancelled?"""
        return bool(self._timer.called)

    def cancel(self) -> None:
        self._timer.cancel()


class GeventPingTimer:
    """The same on gevent's hub: a timer of its event loop (``loop.timer``, public API).

    The callback runs in the hub, where nothing may block: it only spawns the ping.
    """

    def __init__(self, socket: Any, seconds: float) -> None:
        import gevent

        self.socket = socket
        self._timer = gevent.get_hub().loop.timer(seconds)
        self._timer.start(gevent.spawn, ping, socket)

    @property
    def ended(self) -> bool:
        """Has it fired or been cancelled?"""
        return not self._timer.active

    def cancel(self) -> None:
        self._timer.close()


def start(socket: Any, seconds: float, async_mode: str) -> PingTimer | GeventPingTimer:
    """``socket``'s next ping in ``seconds``, on the hub of ``async_mode``."""
    if async_mode == "gevent":
        return GeventPingTimer(socket, seconds)
    return PingTimer(socket, seconds)
