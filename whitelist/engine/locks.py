"""Locks for bookkeeping that never waits while it holds one, and for I/O that does.

Under eventlet's monkey-patching ``threading.Lock`` is a green lock: taking and
giving it back costs four Python calls, and a connect took eight of them. A
section that does no I/O, never sleeps and takes no other lock cannot switch green
threads, so the interpreter's own lock, as the standard library had it before the
patching (``eventlet.patcher.original``, ``gevent.monkey.get_original``: public
API), excludes green threads and native threads (the thread pool) alike, in C.
"""

from __future__ import annotations

import threading
from typing import Any

from whitelist.engine.green import green_library


def bookkeeping_lock() -> Any:
    """A lock for a section of dictionary and counter updates only: no I/O, no waiting."""
    library = green_library()
    if library == "eventlet":
        from eventlet import patcher

        return patcher.original("threading").Lock()
    if library == "gevent":
        from gevent import monkey

        return monkey.get_original("threading", "Lock")()
    return threading.Lock()


def io_lock(async_mode: str) -> Any:
    """A lock that may be held across a blocking write: a green one in a green mode.

    gevent's own lock even where ``threading`` is not patched (a gevent server run
    without ``monkey.patch_all()``): a native lock held by a waiting greenlet would
    block the thread, and so every greenlet, at the next taker.
    """
    if async_mode == "gevent":
        from gevent.lock import Semaphore

        return Semaphore()
    return threading.Lock()  # eventlet's green lock once it patched threading
