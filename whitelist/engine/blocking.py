"""Keep database waits off the green loop: each SQL statement runs in a native thread.

Under eventlet every socket is a green thread of one OS thread. The sqlite3
driver waits for another process's write lock in C (its busy handler, up to the
database's ``timeout``), holding that OS thread: while an admin action, a
migration or the sqlite3 shell holds the lock, a flush of the refusal log froze
every socket of the server. Within ``off_the_loop()``, each statement on the
current green thread's connections runs in eventlet's native thread pool
(``eventlet.tpool.execute``, public API) while the green thread waits for it
cooperatively; the wait itself stays bounded by the database's own timeout.
Under gevent the same runs in the hub's native thread pool
(``gevent.get_hub().threadpool``, public API).

Only the statement crosses over, through Django's public ``execute_wrapper()``:
Django keeps its connections in a ``threading.local``, which eventlet's
monkey-patching makes a green local whose one ``__dict__`` two OS threads would
swap under each other; the DB-API cursor call touches none of that, and the
green thread waits for it, so no connection is used by two threads at once.
Django opens and commits on the loop, where neither waits for a lock in WAL
mode (``BEGIN IMMEDIATE`` is a statement, and is offloaded). In SQLite's
default rollback-journal mode a commit waits for every reader to finish, and
one may be a green thread of this server that needs the loop to fetch its rows:
the server's own writes end their transactions with ``atomic_off_the_loop()``.

Offloaded: SQLite, and psycopg2 when nothing made it green. psycopg2 with a
wait callback (eventlet's patching installs one; under gevent,
``green_psycopg2``) already waits cooperatively, and runs as before; so does
everything in the threading mode, where each task has an OS thread of its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connections, transaction

from whitelist.engine.green import green_library, loop_shares_thread


def blocks_the_loop(connection: Any) -> bool:
    """Would a statement on ``connection`` wait for a lock holding the whole OS thread?"""
    if connection.vendor == "sqlite":
        return True
    if getattr(connection.Database, "__name__", "") == "psycopg2":
        extensions = sys.modules.get("psycopg2.extensions")
        return extensions is None or extensions.get_wait_callback() is None
    return False


def in_native_thread(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """A Django execute wrapper: the DB-API call, in the green library's native thread pool."""
    if green_library() == "gevent":
        import gevent

        return gevent.get_hub().threadpool.apply(execute, (sql, params, many, context))
    from eventlet import tpool

    return tpool.execute(execute, sql, params, many, context)


@contextlib.contextmanager
def off_the_loop() -> Iterator[None]:
    """Within it, this green thread's statements run off the loop, where they could block it.

    Outside eventlet and gevent (or on a cooperative driver) it changes nothing.
    """
    if not loop_shares_thread():
        yield
        return
    with contextlib.ExitStack() as stack:
        for alias in connections:
            connection = connections[alias]
            if blocks_the_loop(connection):
                stack.enter_context(connection.execute_wrapper(in_native_thread))
        yield


@contextlib.contextmanager
def atomic_off_the_loop(using: str) -> Iterator[None]:
    """``transaction.atomic(using=using)`` whose commit, within ``off_the_loop()``, runs there too.

    Django commits through the driver's ``commit()`` on the calling thread. In
    SQLite's rollback-journal mode (a project that never turned WAL on) that
    waits for every reader to finish: one was a green thread of this server,
    between a statement that ran off the loop and the fetch of its rows on it,
    so the loop froze for the whole database timeout and the write failed. The
    outermost block here ends with a ``COMMIT`` statement instead, which leaves
    the loop as every statement does; the driver's ``commit()`` then finds no
    transaction open and does nothing (as the sqlite3 module documents).
    """
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        yield
        if outermost and connection.vendor == "sqlite" and loop_shares_thread():
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")
