"""The benchmark's echo event, on Guardsite as on the plain server (bench/plain_server.py)."""

from __future__ import annotations

from typing import Any

from whitelist import GuardedServer


def register(server: GuardedServer) -> None:
    @server.on("echo")
    def echo(sid: str, data: Any) -> Any:
        """Return what came: message throughput measures the path, not a handler."""
        return data
