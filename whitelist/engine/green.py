"""Whether eventlet has made this process's threads green: no Django, no eventlet import."""

from __future__ import annotations

import sys


def loop_shares_thread() -> bool:
    """Has eventlet made this process's threads green (runsocket, gunicorn's eventlet worker)?"""
    patcher = sys.modules.get("eventlet.patcher")  # never imported: eventlet is not in use
    return patcher is not None and patcher.is_monkey_patched("thread")
