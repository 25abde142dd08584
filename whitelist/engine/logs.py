"""Upstream log lines that any client can provoke, kept to what an operator can act on.

Each matches words an upstream release writes; ``contracts`` checks that the
words are still there (``whitelist.W101``-``W103``), and a changed text is a
warning, never a refusal to start: only the log gets louder.

* python-engineio logs "Session is disconnected" (a poll racing its
  session's close) at ERROR once, under the key it shares with "Invalid
  session", which then goes unlogged (``quiet_closed_session_race``);
* eventlet's WebSocket writes "socket shutdown error" to ``wsgi.errors``, with
  no newline, for every WebSocket a client closed first under gunicorn's
  eventlet worker (``ErrorsStream``, which ``OriginGate`` puts on every request);
* python-socketio's ``RedisManager`` logs every retry of a lost Redis at ERROR
  and never says when it is back (``OncePerOutage``).

And every record python-engineio and python-socketio log carries what clients
wrote escaped (``escape_client_text``): python-engineio writes an unknown
session id as it came ("Invalid session <sid>", a forged log line for the
price of one GET), on a handler of its own unless the project configured its
logger, so no formatter of ours would see it.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from whitelist.core.display import escaped, indented

logger = logging.getLogger(__name__)

# python-engineio's words for a request that arrives just after its session closed.
CLOSED_SESSION_RACE = "'Session is disconnected'"
# eventlet's words when it shuts down a socket its client already closed.
SOCKET_SHUTDOWN_ERROR = "socket shutdown error: [Errno 9]"
# python-socketio's RedisManager: "Cannot publish to redis... retrying", "Cannot receive ...".
REDIS_RETRY_START, REDIS_RETRY_WORD = "Cannot ", "retrying"


class EscapedRecords(logging.Filter):
    """Rewrites a record whose message holds a character that is not printable, escaped.

    A logger's own filter runs before any of its handlers, upstream's own
    ``StreamHandler`` included (gunicorn.conf.py puts it on gunicorn's loggers
    too). A clean message keeps its template and arguments (what error
    trackers group by); a dirty one becomes its escaped text. The traceback is
    left to the formatter, which may not escape it: python-engineio's
    tracebacks are of its own code.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a template that does not fit its arguments: logging reports it
            return True
        if not message.isprintable():
            record.msg, record.args = escaped(message), ()
        return True


ESCAPED_RECORDS = EscapedRecords()


def escape_client_text(server: Any) -> None:
    """Put ``EscapedRecords`` on the loggers python-socketio and python-engineio log on.

    They are ``server.logger`` and ``server.eio.logger``: the ones given to the
    server, else ``socketio.server`` and ``engineio.server``.
    """
    for holder in (server, server.eio):
        upstream = logger_of(holder)
        if not isinstance(upstream, logging.Logger):
            logger.warning(
                "%s logs through %s, not a logging.Logger: what it logs of clients' "
                "text is not escaped; pass a logging.Logger (or True) as its logger",
                type(holder).__name__,
                type(upstream).__name__,
            )
        elif ESCAPED_RECORDS not in upstream.filters:
            upstream.addFilter(ESCAPED_RECORDS)


def logger_of(server: Any) -> Any:
    """The ``logging.Logger`` a python-socketio or python-engineio server logs on.

    Its ``logger`` attribute, or the logger of a ``LoggerAdapter`` given as
    one; contract ``whitelist.E114`` stops the server if it is neither.
    """
    upstream = getattr(server, "logger", None)
    return getattr(upstream, "logger", upstream)


def quiet_closed_session_race(eio: Any) -> None:
    """Log python-engineio's "'Session is disconnected' <sid>" at DEBUG, not ERROR.

    A refused page's socket.io-client closes its Engine.IO session right after
    its ``connect_error``, and a poll it already sent can arrive after the
    close: python-engineio answers 400 and logs it once at ERROR, under the
    same key as "Invalid session" (a session this process never had, as
    behind a load balancer without stickiness), which would then be logged at
    INFO only, below python-engineio's default level. The race is logged at
    DEBUG here and never spends that key.
    """
    log_error_once = eio._log_error_once

    @functools.wraps(log_error_once)
    def log_unless_race(message: str, message_key: str) -> None:
        if message.startswith(CLOSED_SESSION_RACE):
            eio.logger.debug(message)
        else:
            log_error_once(message, message_key)

    eio._log_error_once = log_unless_race


class ErrorsStream:
    """``wsgi.errors`` with one line per write, and a closed socket's shutdown kept quiet.

    That one is logged at DEBUG; anything else is written through, ending with
    a newline, escaped, with any further lines indented (``display.indented``).
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        if SOCKET_SHUTDOWN_ERROR in text:
            logger.debug("%s", text.strip())
            return
        first, _, more = text.removesuffix("\n").partition("\n")
        self._stream.write(escaped(first) + ("\n" + indented(more) if more else "") + "\n")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# python-socketio retries a lost Redis every 1, 2, 4 ... 60 s: a quieter gap ends an outage.
OUTAGE_ENDS_AFTER_QUIET_SECONDS = 120


class OncePerOutage(logging.Filter):
    """Lets the first retry error of a Redis outage through; later ones become DEBUG.

    python-socketio's ``RedisManager`` logs on the logger it is given from
    5.15 on, on the ``socketio`` logger before: put this filter on both.
    "... giving up" (an emit lost) stays an ERROR every time.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last_failure = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.levelno < logging.WARNING or not message.startswith(REDIS_RETRY_START):
            return True
        if REDIS_RETRY_WORD not in message:
            return True
        now = time.monotonic()
        repeat = now - self._last_failure < OUTAGE_ENDS_AFTER_QUIET_SECONDS
        self._last_failure = now
        if not repeat:
            cause = getattr(record, "redis_exception", None)
            record.msg = message + (f" ({cause})" if cause else "")
            record.msg += " (further retries of this outage are logged at DEBUG)"
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
