"""Tell the calls python-socketio makes to connect and disconnect handlers from anything else.

python-socketio dispatches a client's event named ``connect`` or ``disconnect``
to those very handlers, with the client's data as arguments; these readings
accept only what python-socketio itself passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from whitelist.server.guarded import GuardedServer

CATCH_ALL = "*"


class ConnectCall(NamedTuple):
    """A connect python-socketio really made: for which namespace, socket and client."""

    namespace: str
    prefix: tuple[Any, ...]  # the namespace itself, for catch-all handlers
    sid: str
    environ: dict[str, Any]
    auth: Any

    def arguments(self) -> tuple[Any, ...]:
        """The arguments of the newest handler form: ``([namespace,] sid, environ, auth)``."""
        return (*self.prefix, self.sid, self.environ, self.auth)


class DisconnectCall(NamedTuple):
    """A disconnect python-socketio really made, with its remaining arguments (the reason)."""

    namespace: str
    prefix: tuple[Any, ...]
    sid: str
    rest: tuple[Any, ...]

    def arguments(self) -> tuple[Any, ...]:
        return (*self.prefix, self.sid, *self.rest)


def readings(registered: str, args: tuple[Any, ...]) -> list[tuple[Any, tuple[Any, ...], tuple]]:
    """``(namespace, prefix, rest)`` ways to read a handler's arguments.

    A catch-all handler gets the namespace first, except for the literal
    namespace "*", which python-socketio calls without it.
    """
    ways: list[tuple[Any, tuple[Any, ...], tuple]] = []
    if registered == CATCH_ALL and args:
        ways.append((args[0], (args[0],), args[1:]))
    ways.append((registered, (), args))
    return ways


def connect_call(
    server: GuardedServer, registered: str, args: tuple[Any, ...]
) -> ConnectCall | None:
    """The connect python-socketio made with ``args``; None for anything else.

    A real connect passes the very environ python-socketio stored for the
    session; a client's event can only pass data decoded from its packet.
    """
    for namespace, prefix, rest in readings(registered, args):
        if len(rest) < 2 or not isinstance(namespace, str) or not isinstance(rest[0], str):
            continue
        sid, environ = rest[0], rest[1]
        if environ is not None and environ is server.get_environ(sid, namespace):
            auth = rest[2] if len(rest) > 2 else None
            return ConnectCall(namespace, prefix, sid, environ, auth)
    return None


def disconnect_call(
    server: GuardedServer, registered: str, args: tuple[Any, ...]
) -> DisconnectCall | None:
    """The disconnect of an admitted socket that python-socketio made; None for anything else.

    python-socketio marks a socket as disconnecting before it calls the handler,
    so a socket that is still connected is sending an event.
    """
    for namespace, prefix, rest in readings(registered, args):
        if not rest or not isinstance(namespace, str) or not isinstance(rest[0], str):
            continue
        sid = rest[0]
        if (namespace, sid) in server.open_sockets and not server.manager.is_connected(
            sid, namespace
        ):
            return DisconnectCall(namespace, prefix, sid, rest[1:])
    return None
