"""Logging filters for lines any client can provoke."""

from __future__ import annotations

import logging


class WithoutTraceback(logging.Filter):
    """Keep the message, drop the traceback (which says nothing the message does not).

    Django logs every request with a bad ``Host`` header on
    ``django.security.DisallowedHost`` with a 20-line traceback of its own
    middleware: anyone could fill the log with them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True
