"""The baseline: a plain python-socketio eventlet server with no origin check.

It sends the same two events as Guardsite, and is served exactly like runsocket
serves Guardsite: a pool of 10,000 (eventlet's default of 1,024 would stall the
held-connections test) and TCP_NODELAY (without it, Nagle's algorithm and delayed
ACKs hold small frames for ~40 ms), so that a/b measures the guard alone.

    python bench/plain_server.py PORT
"""

from __future__ import annotations

import sys
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
import eventlet  # noqa: E402

eventlet.monkey_patch()

import socket  # noqa: E402

import eventlet.wsgi  # noqa: E402
import socketio  # noqa: E402

sio = socketio.Server(async_mode="eventlet", cors_allowed_origins="*")


@sio.on("connect")
def connect(sid: str, environ: dict, auth: object = None) -> None:
    details = {"origin": environ.get("HTTP_ORIGIN"), "rule": None, "transport": "websocket"}
    sio.emit("permission.message", ("Okay, you're cool.", details), to=sid)
    sio.emit("hello.client", {"message": "It was sent using the ws:// protocol"}, to=sid)


@sio.on("echo")
def echo(sid: str, data: object) -> object:
    return data


def not_found(environ: dict, start_response: object) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [b"not found"]


if __name__ == "__main__":
    listener = eventlet.listen(("127.0.0.1", int(sys.argv[1])), backlog=2048, reuse_port=False)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("READY", flush=True)
    eventlet.wsgi.server(
        listener, socketio.WSGIApp(sio, not_found), max_size=10000, log_output=False, debug=False
    )
