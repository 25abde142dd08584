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
from collections.abc import Callable, Mapping
from typing import Any

from whitelist.engine.calls import CATCH_ALL, ConnectCall, DisconnectCall
from whitelist.server.connections import close_connections

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


def call_connect_handler(
    class_namespaces: Mapping[str, Any], call: ConnectCall, handler: Callable[..., Any] | None
) -> Any:
    """The application's own connect handler, or the class-based namespace's."""
    minimum = len(call.prefix) + 2  # ([namespace,] sid, environ)
    if handler is not None:
        return handler(*fitting(handler, call.arguments(), minimum))
    found = class_namespace(class_namespaces, call.namespace)
    if found is None:
        return True
    instance, prefix = found
    call = call._replace(prefix=prefix)
    args = call.arguments()
    method = namespace_method(instance, "connect")
    if method is not None:  # else a custom trigger_event may still want it all
        args = fitting(method, args, len(prefix) + 2)
    return instance.trigger_event("connect", *args)


def call_disconnect_handler(
    class_namespaces: Mapping[str, Any], call: DisconnectCall, handler: Callable[..., Any] | None
) -> Any:
    """The application's own disconnect handler, or the class-based namespace's."""
    if handler is not None:
        return handler(*fitting(handler, call.arguments(), len(call.prefix) + 1))
    found = class_namespace(class_namespaces, call.namespace)
    if found is None:
        return None
    instance, prefix = found
    # Namespace.trigger_event retries a disconnect without its reason itself.
    return instance.trigger_event("disconnect", *call._replace(prefix=prefix).arguments())


def class_namespace(
    class_namespaces: Mapping[str, Any], namespace: str
) -> tuple[Any, tuple[Any, ...]] | None:
    """The class-based namespace python-socketio would pick, and its argument prefix."""
    if namespace in class_namespaces:
        return class_namespaces[namespace], ()
    if CATCH_ALL in class_namespaces:
        return class_namespaces[CATCH_ALL], (namespace,)
    return None
