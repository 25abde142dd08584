"""Log refusals without letting clients flood the log."""

from __future__ import annotations

import logging

from .guard import Decision

logger = logging.getLogger("whitelist.socketio")

_MAX_REMEMBERED = 1000
_logged: set[tuple[str | None, str]] = set()


def log_refusal(decision: Decision, namespace: str) -> None:
    """Clients choose what they send: each origin and reason at INFO once, then at DEBUG."""
    key = (decision.origin, decision.reason)
    first = key not in _logged
    if first:
        if len(_logged) >= _MAX_REMEMBERED:  # many distinct origins must not mute new ones
            _logged.clear()
        _logged.add(key)
    level = logging.INFO if first else logging.DEBUG
    logger.log(level, "Refused %s on %s: %s", decision.origin, namespace, decision.detail)
