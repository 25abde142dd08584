"""Close a thread's stale database connections only where that thread opened one.

Django's request cycle calls ``close_old_connections`` before and after each view;
the guard does the same around every connect and disconnect handler. Looking
for a connection costs a dozen calls through asgiref's thread-local storage, four
times a connect, and most handlers never touch the database. Django says when a
thread opens a connection (``connection_created``, received in signals.py), so
threads that never did are skipped with one set lookup.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

# Idents of the threads (green threads under eventlet) that may hold a connection.
# An ident reused by a new thread costs that thread one needless look, nothing more.
_holding: set[int] = set()


def connection_opened() -> None:
    """Remember that the current thread holds a database connection."""
    _holding.add(threading.get_ident())


def close_connections() -> None:
    """Close this thread's stale database connections; never raise over a handler's outcome.

    python-socketio runs each event in a green thread or thread of its own, and
    Django opens one connection per thread: without this every event would leave
    one open (Django's request cycle does the same for views).
    """
    ident = threading.get_ident()  # looked up per call: eventlet patches it
    if ident not in _holding:
        return
    try:
        close_old_connections()
        if all(conn.connection is None for conn in connections.all(initialized_only=True)):
            _holding.discard(ident)
    except Exception:
        logger.warning("Could not close a database connection", exc_info=True)
