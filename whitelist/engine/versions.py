"""The python-socketio and python-engineio releases whitelist.server.guarded is tested with.

``make test`` runs the guard's in-process tests on the lowest release of each
range (constraints-lowest.txt) and on the newest one pip installs within it.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import NamedTuple


class TestedRange(NamedTuple):
    """Releases from ``lowest`` up to, not including, ``untested``."""

    lowest: tuple[int, ...]
    untested: tuple[int, ...]
    why_lowest: str

    def describe(self) -> str:
        return f">={_dotted(self.lowest)},<{_dotted(self.untested)}"


TESTED: dict[str, TestedRange] = {
    "python-socketio": TestedRange(
        (5, 14, 0), (5, 19), "older releases unpickle message-queue data"
    ),
    "python-engineio": TestedRange(
        (4, 13, 2), (4, 16), "older releases allow a thread-creation denial of service"
    ),
}

_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_release(version: str) -> tuple[int, ...] | None:
    """``"5.18.1"`` -> ``(5, 18, 1)``; None when it does not start like a release."""
    match = _RELEASE.match(version)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups(default="0"))


def installed_release(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dotted(release: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in release)
