"""A failure that repeats until its cause is fixed, logged once per outage.

A background task that retries every second against a database that is away
would otherwise write a traceback per try. ``OutageLog`` logs the first failure
at ERROR, the retries at DEBUG, and one WARNING when it works again.
"""

from __future__ import annotations

import logging


class OutageLog:
    """The failure and recovery messages of one repeating task."""

    def __init__(self, logger: logging.Logger, failure: str, recovery: str) -> None:
        self._logger = logger
        self._failure = failure
        self._recovery = recovery
        self.failing = False

    def failed(self) -> None:
        """Log the exception being handled: at ERROR the first time, then at DEBUG."""
        level = logging.DEBUG if self.failing else logging.ERROR
        self._logger.log(level, self._failure, exc_info=True)
        self.failing = True

    def succeeded(self) -> None:
        """The task worked: if it had been failing, say so once."""
        if self.failing:
            self._logger.warning(self._recovery)
            self.failing = False
