"""Which library, if any, made this process's threads green: no Django, no import of either.

eventlet (runsocket, gunicorn's eventlet worker) and gevent (gunicorn's gevent
worker) each monkey-patch the standard library, so that every socket is a
green thread of one OS thread; whatever blocks that thread blocks them all.
"""

from __future__ import annotations

import sys


def green_library() -> str | None:
    """``"eventlet"`` or ``"gevent"`` if it patched ``threading``, else None.

    Read from ``sys.modules``: a library that was never imported patched nothing.
    """
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return "eventlet"
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return "gevent"
    return None


def loop_shares_thread() -> bool:
    """Do this process's sockets share one OS thread (eventlet's or gevent's patching)?"""
    return green_library() is not None
