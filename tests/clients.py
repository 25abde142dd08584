"""A python-socketio client that reports what the server decided."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import socketio
import websocket


class PromptlyClosedWebSocket(websocket.WebSocket):
    """websocket-client's socket, waiting 0.2 s instead of 3 for the server's close frame.

    python-engineio's client reads its WebSocket in a thread of its own, which
    takes the server's close frame; ``close()``, called beside it on disconnect,
    then waits its whole timeout for one more (3 s a disconnect against
    python-engineio's threading and gevent servers, guarded or not). Only the
    test client's wait is shorter: the server closes as before.
    """

    def close(
        self, status: int = websocket.STATUS_NORMAL, reason: bytes = b"", timeout: float = 0.2
    ) -> None:
        super().close(status, reason, timeout)
        # websocket-client's close() returns at once, its socket left open, once its reader
        # has taken the server's close frame: python-engineio's reader thread does, racing
        # the disconnect's close(). The socket then stayed open until the garbage collector
        # freed the client's reference cycle, its ResourceWarning failing whichever test
        # happened to be running.
        self.shutdown()


@dataclass
class Outcome:
    """What one connect attempt produced."""

    connected: bool = False
    # permission.message's two arguments merged: {"message": ..., "origin": ..., ...}
    welcome: dict[str, Any] | None = None
    # ... and as they came: (message, details)
    welcome_args: tuple[Any, ...] = ()
    hello: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    # "connect", "permission.message" and "hello.client" in the order they arrived.
    order: list[str] = field(default_factory=list)

    @property
    def refusal_reason(self) -> str | None:
        return (self.error or {}).get("data", {}).get("reason")


def merged(message: Any, details: Any = None) -> dict[str, Any]:
    """A ``permission.*`` event's two arguments (message, details) as one dict."""
    return {"message": message, **(details or {})}


def try_connect(
    url: str,
    *,
    origin: str | None = None,
    referer: str | None = None,
    transport: str = "polling",
    namespace: str = "/",
    suppress_origin: bool = True,
    timeout: float = 15,
    keep: bool = False,
    ca: Path | None = None,
    extra_headers: dict[str, str] | None = None,
    auth: Any = None,
) -> tuple[Outcome, socketio.Client]:
    """Connect once, wait for the welcome or the refusal, and return both the outcome and client.

    ``ca`` is the trust anchor for https:// URLs. The client is disconnected
    unless ``keep`` is true.
    """
    headers = dict(extra_headers or {})
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace our trust anchor
    session.verify = str(ca) if ca else True
    opened: list[websocket.WebSocket] = []

    def open_websocket(*args: Any, **kwargs: Any) -> websocket.WebSocket:
        ws = PromptlyClosedWebSocket(*args, **kwargs)
        opened.append(ws)
        return ws

    client = socketio.Client(
        reconnection=False,
        http_session=session,
        websocket_extra_options={"suppress_origin": suppress_origin, "class_": open_websocket},
    )
    outcome = Outcome()
    settled = threading.Event()  # welcomed and greeted, or disconnected (a revocation)

    def settle_if_greeted_and_welcomed() -> None:
        if {"permission.message", "hello.client"} <= set(outcome.order):
            settled.set()

    @client.on("connect", namespace=namespace)
    def on_connect() -> None:
        outcome.order.append("connect")

    @client.on("permission.message", namespace=namespace)
    def on_welcome(*args: Any) -> None:
        outcome.order.append("permission.message")
        outcome.welcome_args = args
        outcome.welcome = merged(*args)
        settle_if_greeted_and_welcomed()

    @client.on("hello.client", namespace=namespace)
    def on_hello(payload: dict[str, Any]) -> None:
        outcome.order.append("hello.client")
        outcome.hello = payload
        settle_if_greeted_and_welcomed()

    @client.on("disconnect", namespace=namespace)
    def on_disconnect(*reason: Any) -> None:
        settled.set()

    @client.on("connect_error", namespace=namespace)
    def on_error(data: Any) -> None:
        outcome.error = data

    @client.on("*", namespace=namespace)
    def on_any(event: str, *args: Any) -> None:
        outcome.events.append((event, args))

    disconnect = client.disconnect

    def disconnect_and_hang_up() -> None:
        """Also close the HTTP session: its keep-alive connections lingered until collected,
        each counted against the server's cap of connections per address. And every
        WebSocket: python-engineio's client leaves open one whose first read failed, and
        one the server closed first (its disconnect has nothing left to close)."""
        disconnect()
        session.close()
        for ws in opened:
            ws.shutdown()

    try:
        client.connect(
            url,
            headers=headers,
            transports=[transport],
            namespaces=[namespace],
            wait_timeout=timeout,
            auth=auth,
        )
    except socketio.exceptions.ConnectionError:
        outcome.connected = False
    except BaseException:
        disconnect_and_hang_up()
        raise
    else:
        outcome.connected = True
        settled.wait(timeout)
    client.disconnect = disconnect_and_hang_up  # type: ignore[method-assign]
    if not keep:
        client.disconnect()
    return outcome, client


def welcomed(url: str, origin: str) -> bool:
    """Is a client from ``origin`` welcomed by the server at ``url`` right now?"""
    return try_connect(url, origin=origin)[0].welcome is not None


@contextlib.contextmanager
def welcomed_websocket(url: str, origin: str, timeout: float = 10) -> Iterator[Any]:
    """A raw Engine.IO WebSocket whose socket on "/" was admitted; closed at the end.

    For tests that send what no Socket.IO client would.
    """
    import websocket

    endpoint = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(endpoint, origin=origin, timeout=timeout)
    try:
        assert ws.recv().startswith("0")
        ws.send("40")
        assert ws.recv().startswith("40")
        yield ws
    finally:
        ws.close()
        ws.shutdown()  # close() leaves the socket open once the server has closed it


def polling_handshake(url: str, origin: str) -> str:
    """Open a polling Engine.IO session and return its sid (no Socket.IO connect)."""
    response = requests.get(
        f"{url}/socket.io/",
        params={"EIO": "4", "transport": "polling"},
        headers={"Origin": origin},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(json.loads(response.text[1:])["sid"])


def polling_post(url: str, sid: str, origin: str, body: str | bytes) -> requests.Response:
    """POST ``body`` on the polling session ``sid``, as a page on ``origin`` would."""
    return requests.post(
        f"{url}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": sid},
        headers={"Origin": origin, "Content-Type": "text/plain"},
        data=body,
        timeout=10,
    )
