"""What the engine layer needs of the server it hooks into (``GuardedServer``).

The hooks are installed on a ``socketio.Server`` and call back into the guard
through this protocol only, so the engine layer imports nothing of the server
layer above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from whitelist.engine.sessions import EngineSessions


class GuardHost(Protocol):
    """A ``socketio.Server`` that guards its sockets."""

    eio: Any
    manager: Any
    # python-socketio's packet class (its serializer's).
    packet_class: Any
    sessions: EngineSessions
    # Connect outcomes decided ahead of the admin UI's report, by (namespace, sid).
    decided: dict[tuple[str, str], Any]

    def handshake_allowed(self, environ: Mapping[str, Any]) -> bool:
        """Would the rules admit the origin of this Engine.IO handshake?"""

    def is_connect_call(self, namespace: str, args: tuple[Any, ...]) -> bool:
        """Are these the arguments python-socketio passes to a real connect?"""

    def is_open(self, namespace: str, sid: str) -> bool:
        """Was this socket admitted, and is it still open?"""

    def is_welcomed(self, eio_sid: str, namespace: str, sid: str | None) -> bool:
        """May this socket's events reach the handlers yet?"""

    def refuse_connect(self, eio_sid: str, namespace: str) -> bool:
        """Answer this connect with its ``connect_error`` if the rules refuse it; True if so."""

    def refusal_for(self, environ: Mapping[str, Any], namespace: Any) -> list[Any] | None:
        """A refused handshake's connect, answered: its encoded ``connect_error``, or None
        if the rules allow it now."""

    def welcome(self, eio_sid: str, namespace: str) -> None:
        """python-socketio has just acknowledged a connect: welcome it if admitted."""

    def end_refused_session(self, eio_sid: str) -> None:
        """The connect just handled was refused by the guard: close its session soon."""

    def preconnect_limit(self, eio_sid: str) -> int | None:
        """The largest WebSocket message this session may send now (None: no budget)."""

    def start_session_sweeper(self) -> None:
        """Close sessions past their deadlines, from now on."""
