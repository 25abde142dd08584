"""Bookkeeping locks: the interpreter's own under eventlet, exclusive for native threads too."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from whitelist.engine.locks import bookkeeping_lock

ROOT = Path(__file__).resolve().parent.parent

UNDER_EVENTLET = """
import eventlet
eventlet.monkey_patch()
import threading
from eventlet import tpool
from whitelist.engine.locks import bookkeeping_lock

lock = bookkeeping_lock()
green = threading.Lock()
print(type(lock).__module__, type(lock).__name__, type(green).__module__)
with lock:  # held by the loop's thread: a native thread must not get it
    print("native got it:", tpool.execute(lock.acquire, False))
print("native after release:", tpool.execute(lambda: lock.acquire(False) and not lock.release()))
"""


def test_without_eventlet_it_is_threading_lock() -> None:
    assert type(bookkeeping_lock()) is type(threading.Lock())


@pytest.mark.live
def test_under_eventlet_it_is_the_c_lock_and_excludes_native_threads() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", UNDER_EVENTLET],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    kind, got, after = result.stdout.splitlines()
    assert kind.split()[:2] == ["_thread", "lock"]  # not eventlet's green lock
    assert kind.split()[2] != "_thread"  # ... which threading.Lock is, patched
    assert got == "native got it: False"
    assert after == "native after release: True"
