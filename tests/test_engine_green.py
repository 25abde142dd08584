"""The engine layer under gevent's monkey-patching, in a process patched as gunicorn's gevent
worker patches it: the green library named, C locks, native threads for blocking statements,
and psycopg2 made cooperative."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.live import ROOT
from whitelist.engine.green import green_library

pytestmark = pytest.mark.live  # a process of its own: the test process is not patched

PATCHED = """
from gevent import monkey

monkey.patch_all()

import json
import threading

from psycopg2 import extensions

from whitelist.engine.blocking import in_native_thread
from whitelist.engine.green import green_library, loop_shares_thread
from whitelist.engine.green_psycopg2 import make_psycopg2_green, wait_cooperatively
from whitelist.engine.locks import bookkeeping_lock

native_id = monkey.get_original("threading", "get_native_id")
lock = bookkeeping_lock()
statement = in_native_thread(lambda *args: native_id(), "SELECT 1", None, False, {})
print(json.dumps({
    "library": green_library(),
    "shares": loop_shares_thread(),
    "lock": type(lock).__module__ + "." + type(lock).__name__,
    "statement in another thread": statement != native_id(),
    "green psycopg2": make_psycopg2_green(),
    "callback": extensions.get_wait_callback() is wait_cooperatively,
}))
"""


def test_under_gevent_the_engine_knows_it_and_keeps_blocking_work_off_the_hub() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PATCHED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "library": "gevent",
        "shares": True,
        "lock": "_thread.lock",
        "statement in another thread": True,
        "green psycopg2": True,
        "callback": True,
    }


def test_an_unpatched_process_has_no_green_library() -> None:
    assert green_library() is None
