"""The project's own Socket.IO event handlers (the guard is in whitelist.server.guarded)."""

from __future__ import annotations

from typing import Any

from whitelist import GuardedServer, get_user


def register(server: GuardedServer) -> None:
    """Add the demo's handlers to ``server``."""

    @server.on("whoami")
    def whoami(sid: str, *args: Any) -> dict[str, Any]:
        """Answer with what the server knows of this socket (for the demo page)."""
        socket = server.open_sockets.get("/", sid)
        return {
            "sid": sid,
            "origin": socket.decision.origin if socket else None,
            "transport": server.transport(sid),
        }

    @server.on("whoami", namespace="/account")
    def account_whoami(sid: str, *args: Any) -> dict[str, Any]:
        """The Django user behind this socket (/account admits logged-in users only)."""
        user = get_user(server, sid, "/account")
        return {"sid": sid, "username": user.get_username(), "staff": user.is_staff}
