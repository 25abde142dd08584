"""Log refusals without letting clients flood the log or mute it."""

from __future__ import annotations

import logging

from .guard import Decision
from .ratelimited_log import RateLimitedLog

logger = logging.getLogger("whitelist.socketio")
refusals = RateLimitedLog(logger)


def log_refusal(decision: Decision, namespace: str) -> None:
    """At INFO, at most 10 a minute per reason; the rest at DEBUG, counted."""
    refusals.log(
        f"refusals ({decision.reason})",
        logging.INFO,
        "Refused %s on %s: %s",
        decision.origin,
        namespace,
        decision.detail,
    )
