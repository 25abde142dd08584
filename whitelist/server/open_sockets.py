"""Which sockets are open, and from which origin, so that a rule change can revoke them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from whitelist.rules.decision import Decision


@dataclass(frozen=True, slots=True)
class OpenSocket:
    """What the server knows about one admitted socket (one sid, one namespace)."""

    sid: str
    namespace: str
    decision: Decision
    # The rules' revision in memory when the decision was taken (None: none loaded yet).
    revision: int | None = None


class OpenSockets:
    """The admitted sockets by (namespace, sid).

    Each operation is a single dict operation, atomic under the GIL, so request
    threads and the watcher may use it at once in python-socketio's threading mode.
    """

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], OpenSocket] = {}

    def add(self, socket: OpenSocket) -> None:
        self._sockets[(socket.namespace, socket.sid)] = socket

    def discard(self, namespace: str, sid: str) -> OpenSocket | None:
        return self._sockets.pop((namespace, sid), None)

    def get(self, namespace: str, sid: str) -> OpenSocket | None:
        return self._sockets.get((namespace, sid))

    def __contains__(self, key: object) -> bool:
        return key in self._sockets

    def __len__(self) -> int:
        return len(self._sockets)

    def __iter__(self) -> Iterator[OpenSocket]:
        return iter(list(self._sockets.values()))
