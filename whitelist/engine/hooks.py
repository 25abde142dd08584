"""Install the engine layer's hooks on a ``GuardedServer``, in the order they depend on.

``REACH.md`` beside this module lists each reach past a public API, why, and
what replaces it once upstream fixes the cause; ``contracts`` checks every
assumption first, so a changed upstream stops the server instead of silently
refusing everyone or dropping a protection.
"""

from __future__ import annotations

from whitelist.engine import (
    contracts,
    green_psycopg2,
    instrumentation,
    logs,
    messages,
    session_hooks,
    websockets,
)
from whitelist.engine.host import GuardHost


def install(server: GuardHost) -> None:
    """Check the upstream contracts for the server's mode, then hook into its engine."""
    contracts.ensure(server.eio.async_mode)
    messages.hook_messages(server)
    logs.escape_client_text(server)
    logs.quiet_closed_session_race(server.eio)
    session_hooks.hook_sessions(server)
    websockets.use_guarded_websockets(server)
    if server.eio.async_mode in ("eventlet", "gevent"):
        session_hooks.track_ping_timers(server)
    if server.eio.async_mode == "gevent":
        green_psycopg2.make_psycopg2_green()


def reinstall_after_instrument(server: GuardHost) -> None:
    """``Server.instrument()`` replaced hooks: put the guard back in front of them.

    The admin UI registers Engine.IO connect and disconnect handlers of its own,
    and its own ``_trigger_event``.
    """
    session_hooks.hook_sessions(server)
    instrumentation.guard_before_instrumentation(server)


def start_client_manager(server: GuardHost) -> None:
    """Start a message queue's listener now, not at the first client's connect."""
    session_hooks.initialize_manager(server)
