"""A real python-engineio server in memory, and sessions opened through its WSGI handshake.

For the engine layer's in-process tests: no socket, no thread serving requests;
``handle_request`` is called with a made-up environ, as a WSGI server would.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any

import engineio

# Generous: what a test waits for happens at once, or never.
DEADLINE = 10


def engine_server(async_mode: str = "threading", **options: Any) -> engineio.Server:
    """python-engineio's server as ``GuardedServer`` configures it, without the client monitor."""
    return engineio.Server(
        async_mode=async_mode,
        cors_allowed_origins=[],
        monitor_clients=False,
        logger=False,
        **options,
    )


def handshake_environ(origin: str | None = None) -> dict[str, Any]:
    """The GET that opens an Engine.IO session over long-polling."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/engine.io/",
        "QUERY_STRING": "EIO=4&transport=polling",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "HTTP_HOST": "guardsite.test",
    }
    if origin is not None:
        environ["HTTP_ORIGIN"] = origin
    return environ


def open_polling_session(app: Any, origin: str | None = None) -> str:
    """Open a session as a long-polling client does (its first poll answered); its sid.

    ``app`` is an ``engineio.Server``, or anything with its WSGI ``handle_request``.
    """
    statuses: list[str] = []
    body = app.handle_request(
        handshake_environ(origin), lambda status, headers, *exc_info: statuses.append(status)
    )
    assert statuses == ["200 OK"], (statuses, body)
    return str(json.loads(body[0].decode()[1:])["sid"])


def returns_in_time(call: Callable[[], object]) -> bool:
    """Does ``call()`` return within ``DEADLINE``? (Run in a thread of its own.)"""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    return not thread.is_alive()
