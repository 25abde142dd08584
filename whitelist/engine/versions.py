"""The upstream releases the engine layer supports: the one source of truth.

Each range runs from the lowest release ``make test`` tests (older ones lack a
fix the guard relies on) up to the next major release, so that installing a
new minor or patch release, a security fix say, never fails to resolve: the
start-up contracts (``contracts``) and ``manage.py check`` stand guard
instead, and ``make test-newest`` runs the guard's tests on whatever is newest.

pyproject.toml, requirements.txt, constraints-lowest.txt and docs/versions.md
repeat these ranges; ``tests/test_versions.py`` fails when
one of them disagrees.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Supported:
    """Releases ``lowest`` and up, below ``below``; tested up to the ``newest`` minor series."""

    distribution: str
    lowest: str
    newest: str
    below: str
    why_lowest: str

    @property
    def requirement(self) -> str:
        """The requirement line: ``python-socketio>=5.14.0,<6``."""
        return f"{self.distribution}>={self.lowest},<{self.below}"

    def is_older(self, release: tuple[int, ...]) -> bool:
        return release < _parts(self.lowest)

    def is_newer_than_tested(self, release: tuple[int, ...]) -> bool:
        """A minor series above the newest tested one (its patch releases count as tested)."""
        return release[:2] > _parts(self.newest)[:2]


SUPPORTED: dict[str, Supported] = {
    supported.distribution: supported
    for supported in (
        Supported(
            "python-socketio", "5.14.0", "5.18.1", "6", "older releases unpickle message-queue data"
        ),
        Supported(
            "python-engineio",
            "4.13.2",
            "4.15.1",
            "5",
            "older releases allow a thread-creation denial of service",
        ),
        Supported(
            "eventlet",
            "0.40.0",
            "0.41.3",
            "1",
            "older releases are not tested with the WebSocket hooks",
        ),
    )
}

_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def _parts(version: str) -> tuple[int, ...]:
    release = parse_release(version)
    if release is None:
        raise ValueError(f"{version!r} is not a release number")
    return release


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
