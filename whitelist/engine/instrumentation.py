"""python-socketio's admin UI (``Server.instrument()``) with every hardening still in place.

``instrument()`` replaces the private ``Server._trigger_event`` (``whitelist.E106``)
with one that reports every connect to the admin UI *before* the connect
handler runs, and registers Engine.IO ``connect`` and ``disconnect`` handlers
of its own, which drop the session hooks (origins, deadlines, clean-up). In
development mode it also swaps ``Socket._websocket_handler`` and
``Socket._send_ping`` for ``partialmethod``s, which ``sockets.owning_socket``
sees through.
"""

from __future__ import annotations

import functools
from typing import Any

import socketio


def guard_before_instrumentation(server: Any) -> None:
    """Tell the admin UI of a connect only once the guard and the handler admitted it.

    Here the guard and the application's handler decide first, the handler is
    not run twice, and a disconnect is reported only for a socket that was.

    The admin UI's periodic socket list reads python-socketio's rooms, which
    also hold sockets whose connect is still being decided: one refused in that
    moment can show up there until the admin UI reloads.
    """
    report = server._trigger_event
    dispatch = functools.partial(socketio.Server._trigger_event, server)

    def trigger_event(event: str, namespace: str, *args: Any) -> Any:
        if event == "connect":
            if not server.is_connect_call(namespace, args):
                return False
            sid = args[0]
            outcome = dispatch(event, namespace, *args)  # raises or returns False to refuse
            if outcome is False:
                return False
            server.decided[(namespace, sid)] = outcome
            try:
                return report(event, namespace, *args)
            finally:
                server.decided.pop((namespace, sid), None)
        if event == "disconnect" and (not args or not server.is_open(namespace, args[0])):
            return dispatch(event, namespace, *args)  # never reported as connected
        return report(event, namespace, *args)

    server._trigger_event = trigger_event
