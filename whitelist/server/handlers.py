"""Call an application's connect and disconnect handlers in the form they were written.

python-socketio accepts ``connect(sid, environ)``, ``connect(sid, environ, auth)``
and ``connect(sid, environ, auth=None)`` (and ``disconnect(sid)`` or
``disconnect(sid, reason)``), and picks one by calling and catching
``TypeError``; the order changed in 5.17, and a ``TypeError`` raised *inside* a
handler is then mistaken for the wrong form. Reading the signature instead
picks the form once, and lets a handler's own errors be errors.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1024)
def accepts(handler: Callable[..., Any], count: int) -> bool:
    """Can ``handler`` be called with ``count`` positional arguments?"""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # a callable without a signature: trust it
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def fitting(handler: Callable[..., Any], args: tuple[Any, ...], minimum: int) -> tuple[Any, ...]:
    """As many of ``args`` as ``handler`` takes, but at least ``minimum``.

    Trailing arguments the handler does not take (``auth``, ``reason``) are
    dropped; if it takes fewer than ``minimum``, all are kept and the call
    fails as python-socketio's would.
    """
    for count in range(len(args), minimum - 1, -1):
        if accepts(handler, count):
            return args[:count]
    return args


def namespace_method(namespace: Any, event: str) -> Callable[..., Any] | None:
    """The ``on_<event>`` method of a class-based namespace, if it has one."""
    return getattr(namespace, f"on_{event}", None)


def close_connections() -> None:
    """Close this thread's stale database connections; never raise over a handler's outcome.

    python-socketio runs each event in a green thread or thread of its own, and
    Django opens one connection per thread: without this every event would leave
    one open (Django's request cycle does the same for views).
    """
    try:
        close_old_connections()
    except Exception:
        logger.warning("Could not close a database connection", exc_info=True)


def closing_connections(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler``, closing stale database connections before and after it runs."""

    @functools.wraps(handler)
    def handle(*args: Any) -> Any:
        close_connections()
        try:
            return handler(*args)
        finally:
            close_connections()

    return handle
