"""Answers the gate and the server give without going further: JSON with a status."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def respond_json(
    start_response: Callable[..., Any],
    status: str,
    body: dict[str, Any] | None,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    """Answer with ``body`` as JSON (or nothing), without going further."""
    payload = json.dumps(body).encode() if body is not None else b""
    response_headers = [("Content-Type", "application/json"), *(headers or [])]
    response_headers.append(("Content-Length", str(len(payload))))
    start_response(status, response_headers)
    return [payload]
