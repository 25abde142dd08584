"""A WebSocket upgrade is RFC 6455's, or it is answered here, before any session opens.

Under threading and gevent, python-engineio hands the upgrade to
simple-websocket, whose handshake (wsproto) raises on a missing
``Sec-WebSocket-Key`` or a version other than 13: the WSGI server answered
500 and logged a traceback for a request anyone can send. eventlet's own
WebSocket answered 400, after python-engineio had opened a session for it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

# The only version browsers speak (RFC 6455, section 4.1).
VERSION = "13"


def upgrade_problem(environ: dict[str, Any]) -> tuple[str, str] | None:
    """The status and reason to refuse a WebSocket upgrade with, or None if it is sound."""
    version = environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip()
    if version != VERSION:
        # Section 4.2.2: a version the server does not speak gets 426 and the one it does.
        return "426 Upgrade Required", f"Sec-WebSocket-Version must be {VERSION}"
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        nonce = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        return "400 Bad Request", "Sec-WebSocket-Key must be 16 bytes in base64"
    return None
