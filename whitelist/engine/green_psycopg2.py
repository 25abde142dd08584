"""psycopg2 waits cooperatively under gevent: a wait callback on gevent's sockets.

eventlet's monkey-patching installs such a callback itself; gevent's does not.
Without one, psycopg2 waits for PostgreSQL in C, holding the one OS thread that
every socket's greenlet shares: a ``pg_sleep(8)`` in one handler stalled every
socket of the worker for 8 s. psycopg2's documented hook
(``extensions.set_wait_callback``) takes a function that polls the connection
and waits on its socket; with gevent's ``wait_read``/``wait_write`` the
greenlet yields to the others while PostgreSQL works.
"""

from __future__ import annotations

from typing import Any

from whitelist.engine.green import green_library


def wait_cooperatively(connection: Any, timeout: float | None = None) -> None:
    """psycopg2's wait callback: poll ``connection``, and wait on its socket as gevent does."""
    from gevent.socket import wait_read, wait_write
    from psycopg2 import OperationalError, extensions

    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        if state == extensions.POLL_READ:
            wait_read(connection.fileno(), timeout=timeout)
        elif state == extensions.POLL_WRITE:
            wait_write(connection.fileno(), timeout=timeout)
        else:
            raise OperationalError(f"psycopg2 polled an unknown state: {state!r}")


def make_psycopg2_green() -> bool:
    """Under gevent's patching, make psycopg2 wait cooperatively; True if it now does.

    Nothing changes elsewhere, or when the project installed a callback of its own.
    """
    if green_library() != "gevent":
        return False
    try:
        from psycopg2 import extensions
    except ImportError:  # no PostgreSQL driver: nothing to make green
        return False
    if extensions.get_wait_callback() is None:
        extensions.set_wait_callback(wait_cooperatively)
    return True
