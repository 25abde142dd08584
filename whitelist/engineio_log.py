"""python-engineio's log, with one routine race kept out of the errors.

When a client closes its Engine.IO session (a refused page's socket.io-client
does, right after its ``connect_error``), a long-poll or upgrade request it
already sent can arrive after the close. python-engineio answers it with 400
and logs ``'Session is disconnected' <sid>`` at ERROR (once, then at INFO).
Nothing is wrong and nobody can act on it: it is logged at DEBUG here.
"Invalid session" (a request for a session this process never had, as
behind a load balancer without stickiness) stays an ERROR.
"""

from __future__ import annotations

import logging

RACE = "'Session is disconnected'"


class ClosedSessionRace(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not str(record.msg).startswith(RACE):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_closed_session_race(logger: logging.Logger | logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
    """Attach the filter to python-engineio's logger (a logger, or an adapter of one)."""
    target = logger.logger if isinstance(logger, logging.LoggerAdapter) else logger
    if not any(isinstance(f, ClosedSessionRace) for f in target.filters):
        target.addFilter(ClosedSessionRace())
