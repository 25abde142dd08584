"""A ``logging.Formatter`` for plain text lines in which no client byte starts a line.

Log messages carry what clients wrote: origins, forwarded addresses, session
ids, request lines, in our own messages and in python-engineio's, Django's and
eventlet's. A raw LF, CR, NEL or U+2028 in one of them forges a line of the
server's own, an ESC drives the terminal that shows it. This formatter writes
every message escaped (``whitelist.core.display.escaped``), whoever logged
it, so a site is safe however many call sites and upstream releases log client
text. A traceback keeps its lines, each escaped and indented, so that only a
record's first line starts at the margin. In ``LOGGING``: ``"formatters":
{"plain": {"class": "whitelist.plainlog.PlainFormatter", "format": ...}}``.
"""

from __future__ import annotations

import logging

from whitelist.core.display import escaped, indented


class PlainFormatter(logging.Formatter):
    """``logging.Formatter`` with the message escaped, and a traceback escaped and indented."""

    def format(self, record: logging.LogRecord) -> str:
        """As ``logging.Formatter.format``, without reading or filling the shared
        ``record.exc_text``: another handler's formatter may have cached it raw."""
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + indented(record.exc_text)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escaped(super().formatMessage(record))

    def formatException(self, ei: logging._SysExcInfoType) -> str:  # noqa: N802
        return indented(super().formatException(ei).rstrip("\n"))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return indented(super().formatStack(stack_info).rstrip("\n"))
