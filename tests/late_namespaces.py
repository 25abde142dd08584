"""Handlers a developer might add later, written without any thought of the guard."""

from __future__ import annotations

from typing import Any

import socketio

from whitelist.server.users import get_user


def register(server: socketio.Server) -> None:
    @server.on("whoami", namespace="/staffonly")
    def staff_whoami(sid: str) -> str:
        return get_user(server, sid, "/staffonly").get_username()

    @server.on("username", namespace="/late")
    def late_username(sid: str) -> str:
        return get_user(server, sid, "/late").get_username()

    @server.on("connect", namespace="/late")
    def late_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        return True  # welcomes everybody: the guard must still run first

    @server.on("echo", namespace="/late")
    def late_echo(sid: str, data: Any) -> Any:
        return data

    @server.on("connect", namespace="/broken")
    def broken_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        raise RuntimeError("a bug in a connect handler")

    @server.on("count_rules", namespace="/late")
    def count_rules(sid: str) -> int:
        from whitelist.models import AllowedOrigin

        return AllowedOrigin.objects.count()

    @server.on("sleep_in_database", namespace="/late")
    def sleep_in_database(sid: str, seconds: float) -> str:
        """A slow query (PostgreSQL only): other sockets must not wait for it."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
        return "slept"

    @server.on("pid", namespace="/late")
    def pid(sid: str) -> int:
        """Which server process holds this socket."""
        import os

        return os.getpid()

    @server.on("connect", namespace="/refusing")
    def refusing_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        return False

    @server.on("connect", namespace="/typeerror")
    def typeerror_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        raise TypeError("a bug that happens to be a TypeError")

    @server.on("connect", namespace="/legacy")
    def legacy_connect(sid: str, environ: dict[str, Any]) -> None:
        """The two-argument form python-socketio still accepts."""

    @server.on("shout", namespace="/late")
    def shout(sid: str, data: Any) -> None:
        server.emit("shouted", data, namespace="/late")  # every node, with a message queue

    @server.on("open_sockets", namespace="/late")
    def open_sockets(sid: str) -> int:
        return len(server.open_sockets)  # type: ignore[attr-defined]

    slow_connects: list[str] = []

    @server.on("connect", namespace="/slow")
    def slow_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        """A connect handler that does I/O for a while (a session lookup, say)."""
        slow_connects.append(sid)
        server.sleep(1.5)
        return True

    @server.on("slow_connects", namespace="/late")
    def slow_connects_begun(sid: str) -> int:
        """How many slow connect handlers have begun: a test acts while one runs."""
        return len(slow_connects)

    @server.on("server_stats", namespace="/late")
    def server_stats(sid: str) -> dict[str, int]:
        """What an attack could pile up: sessions, threads, descriptors, memory."""
        return resource_usage(server)


def resource_usage(server: socketio.Server) -> dict[str, int]:
    """Engine.IO sessions, session deadlines, green threads, open sockets and RSS in KiB.

    Green threads include python-engineio's ping timer, which outlives its
    session by up to the ping interval (25 s).
    """
    import gc
    import os

    import greenlet

    with open(f"/proc/{os.getpid()}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "sessions": len(server.eio.sockets),
        "deadlines": server.sessions.pending_deadlines(),  # type: ignore[attr-defined]
        "green_threads": sum(
            isinstance(o, greenlet.greenlet) and not o.dead for o in gc.get_objects()
        ),
        "sockets": sum(
            os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")
        ),
        "rss_kib": rss,
    }
