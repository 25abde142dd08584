"""A python-socketio client that reports what the server decided."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import socketio


@dataclass
class Outcome:
    """What one connect attempt produced."""

    connected: bool = False
    welcome: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def refusal_reason(self) -> str | None:
        return (self.error or {}).get("data", {}).get("reason")


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
) -> tuple[Outcome, socketio.Client]:
    """Connect once, wait for the welcome or the refusal, and return both the outcome and client.

    The client is disconnected unless ``keep`` is true.
    """
    headers = {}
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    client = socketio.Client(
        reconnection=False,
        websocket_extra_options={"suppress_origin": suppress_origin},
    )
    outcome = Outcome()
    welcomed = threading.Event()

    @client.on("permission.message", namespace=namespace)
    def on_welcome(payload: dict[str, Any]) -> None:
        outcome.welcome = payload
        welcomed.set()

    @client.on("connect_error", namespace=namespace)
    def on_error(data: Any) -> None:
        outcome.error = data

    @client.on("*", namespace=namespace)
    def on_any(event: str, *args: Any) -> None:
        outcome.events.append((event, args))

    try:
        client.connect(
            url,
            headers=headers,
            transports=[transport],
            namespaces=[namespace],
            wait_timeout=timeout,
        )
    except socketio.exceptions.ConnectionError:
        outcome.connected = False
    else:
        outcome.connected = True
        welcomed.wait(timeout)
    if not keep:
        client.disconnect()
    return outcome, client
