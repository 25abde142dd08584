"""A WebSocket upgrade is RFC 6455's, or it is answered here, before any session opens.

Under threading and gevent, python-engineio handed the upgrade to
simple-websocket, whose handshake (wsproto) raised on a missing
``Sec-WebSocket-Key`` or a version other than 13: the WSGI server answered
500 and logged a traceback for a request anyone can send. eventlet's own
WebSocket answered 400, after python-engineio had opened a session for it.
Those modes' WebSocket is now ``whitelist.engine.wsproto_websocket``, which
relies on this check and only refuses a missing key itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from whitelist.core.query import session_id
from whitelist.gate.responses import respond_json

# The only version browsers speak (RFC 6455, section 4.1).
VERSION = "13"


def refuse_unsound_upgrade(
    environ: dict[str, Any], query: dict[str, list[str]], start_response: Callable[..., Any]
) -> list[bytes] | None:
    """Answer a request python-engineio would take as a WebSocket upgrade, if it is no
    sound one (``Upgrade: websocket`` is known to be there); None to go on."""
    if not _engineio_upgrades(environ, query):
        return None
    problem = upgrade_problem(environ)
    if problem is None:
        return None
    status, reason = problem
    headers = [("Sec-WebSocket-Version", VERSION)] if status.startswith("426") else []
    return respond_json(start_response, status, {"error": reason}, headers)


def _engineio_upgrades(environ: dict[str, Any], query: dict[str, list[str]]) -> bool:
    """Would python-engineio hand this ``Upgrade: websocket`` request to its WebSocket?

    A handshake does when its first non-blank ``transport`` field says
    ``websocket``, a GET of an open session whatever its query says; both only
    when ``Connection`` names ``upgrade``.
    """
    if environ.get("REQUEST_METHOD") != "GET":
        return False
    tokens = environ.get("HTTP_CONNECTION", "").lower().split(",")
    upgrade = "upgrade" in (token.strip() for token in tokens)
    if session_id(query) is None:
        # python-engineio reads the first non-blank field (its parse_qs drops blank ones),
        # and without "Connection: upgrade" answers a websocket handshake as a poll.
        transport = next((value for value in query.get("transport", ()) if value), "polling")
        return upgrade and transport == "websocket"
    return upgrade


def upgrade_problem(environ: dict[str, Any]) -> tuple[str, str] | None:
    """The status and reason to refuse a WebSocket upgrade with, or None if it is sound."""
    version = environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip()
    if version != VERSION:
        # Section 4.2.2: a version the server does not speak gets 426 and the one it does.
        return "426 Upgrade Required", f"Sec-WebSocket-Version must be {VERSION}"
    if not environ.get("HTTP_HOST"):  # HTTP/1.1 requires it (simple-websocket raised without)
        return "400 Bad Request", "a WebSocket upgrade needs a Host header"
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        nonce = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        return "400 Bad Request", "Sec-WebSocket-Key must be 16 bytes in base64"
    return None
