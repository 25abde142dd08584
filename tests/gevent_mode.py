"""Fixtures that put a test module's live servers in gevent mode.

A module binds ``start_server`` (and ``socket_server`` and ``dev_ca`` if it uses
the shared server) to these: every runsocket its tests start, shared or their
own, is then a gevent runsocket, with the same tests as the eventlet ones.
They run without coverage unless a test asks for it: they run the code the
eventlet servers measure, and gevent's own parts are measured in process
(tests/test_socketio_gevent.py, tests/test_engine_wsproto_websocket.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.live import LiveServer
from tests.conftest import ALLOWED, TLS_ALLOWED, WILDCARD

GEVENT = {"GUARDSITE_SOCKETIO_ASYNC_MODE": "gevent"}


@pytest.fixture(scope="module")
def start_server(start_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """conftest's ``start_server``, in gevent mode."""

    def start(*rules: str, **options: Any) -> LiveServer:
        options.setdefault("measured", False)
        return start_server(*rules, **(GEVENT | options))

    return start


@pytest.fixture(scope="module")
def socket_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """The shared server's rules and addresses, in gevent mode."""
    return start_server(ALLOWED, WILDCARD, TLS_ALLOWED, tls_ports=1)


@pytest.fixture(scope="module")
def dev_ca(socket_server: LiveServer, tls_state: Path) -> Path:
    """conftest's ``dev_ca`` for this module's shared server: the same state folder."""
    return tls_state / "tls" / "dev-cert.pem"


# The fixtures a live test takes: one of these names a test that starts a server.
LIVE = {"socket_server", "start_server", "capped_server", "secure_only", "server", "behind_a_proxy"}


def collect_live_tests(module: Any, into: dict[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    """``module``'s live tests, and the fixtures and helpers they use, as ``into``'s own
    (a test module's ``globals()``): collected there, they run on its gevent servers."""
    for name, value in vars(module).items():
        if name.startswith("test_"):
            if name not in skip and LIVE & set(inspect.signature(value).parameters):
                into[name] = value
        elif name not in into:
            into[name] = value  # its fixtures (capped_server, secure_only) and helpers
