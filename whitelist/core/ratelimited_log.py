"""Log what clients provoke at a bounded rate, by kind, never by what the client chose.

Clients choose their origins, headers and packets: a log keyed by them can be
filled (so a real refusal is muted) or flooded. Here each kind of event (a
refusal reason, a malformed packet), a small fixed set named by the code, may
log ``burst`` lines per ``window`` seconds at its level; the rest go to DEBUG,
and the next line after the window says how many were held back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    logged: int = 0
    held_back: int = 0


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._window = window
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def log(
        self,
        kind: str,
        level: int,
        message: str,
        *args: object,
        extra: dict[str, object] | None = None,
        exc_info: bool = False,
    ) -> None:
        """Log ``message`` at ``level`` unless ``kind`` used up its lines in this window."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(kind)
            held_back = 0
            if window is None or now - window.started >= self._window:
                held_back = window.held_back if window else 0
                window = self._windows[kind] = _Window(now)
            allowed = window.logged < self._burst
            if allowed:
                window.logged += 1
            else:
                window.held_back += 1
        if held_back:
            self._logger.log(
                level, "... and %d more %s in the %d s before (logged at DEBUG)",
                held_back, kind, self._window,
            )  # fmt: skip
        level = level if allowed else logging.DEBUG
        self._logger.log(level, message, *args, extra=extra, exc_info=exc_info)
