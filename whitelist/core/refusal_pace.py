"""Refusals answered at a steady pace, so that a flood of them cannot crowd out admissions.

A refusal in band costs the server nearly what an admission does, and a flood's
clients start again the moment they are refused: from 250 addresses (which no
per-address limit stops), 64 of them left allowed visitors a fifth of their
connect rate, and refusing at the handshake instead only let them cycle faster.
Each refusal past ``burst`` takes the next free slot of ``rate`` a second and
waits for it (a green sleep), so a flood gets ``rate`` refusals a second of the
server, plus one a client every ``max_wait`` (the longest wait) past what the
turns hold, and admitted work goes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RefusalPace:
    """``rate`` refusals a second, ``burst`` of them at once (the generic cell rate algorithm)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_wait: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) / rate
        self.max_wait = max_wait
        self._clock = clock
        self._due = 0.0  # when the next refusal is due, were none early

    def wait(self) -> float:
        """Seconds this refusal waits for its turn (0: none), at most ``max_wait``.

        One that would wait longer waits ``max_wait`` without taking a turn: a
        flood's clients beyond what the turns hold are each held that long.
        """
        now = self._clock()
        due = max(self._due, now)
        wait = due - self.tolerance - now
        if wait > self.max_wait:
            return self.max_wait
        self._due = due + self.interval
        return max(wait, 0.0)
