"""A slowloris attacker and a visitor from another loopback address, for the serving tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Held:
    """One attacking connection: when it opened, and when the server closed it."""

    opened: float
    closed: float | None = None

    @property
    def lifetime(self) -> float | None:
        return None if self.closed is None else self.closed - self.opened


@dataclass
class Slowloris:
    """``count`` connections from ``source`` that each send a request head a line at a time.

    Each begins ``GET / HTTP/1.1`` and then sends one more header line every
    ``pace`` seconds, never the blank line that ends the head; a connection the
    server closes is opened again at the next line, so the attack keeps ``count`` going.
    Runs in a thread of its own until ``stop()`` or ``limit`` seconds.
    """

    port: int
    source: str = "127.0.0.1"
    count: int = 200
    pace: float = 1.0
    limit: float = 60.0
    connections: list[Held] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Slowloris:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _open(self, selector: selectors.BaseSelector) -> None:
        raw = socket.socket()
        raw.bind((self.source, 0))
        raw.settimeout(2)
        try:
            raw.connect(("127.0.0.1", self.port))
            raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        except OSError:
            raw.close()
            return
        raw.setblocking(False)
        held = Held(time.monotonic())
        self.connections.append(held)
        selector.register(raw, selectors.EVENT_READ, held)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        started = time.monotonic()
        next_line = started
        try:
            while not self._stop.is_set() and time.monotonic() - started < self.limit:
                for key, _ in selector.select(timeout=0.05):
                    self._closed_by_server(selector, key.fileobj, key.data)
                if time.monotonic() >= next_line:
                    # Once per pace: a line on every open connection, the closed ones again.
                    next_line += self.pace
                    for _ in range(self.count - len(selector.get_map())):
                        self._open(selector)
                    for key in list(selector.get_map().values()):
                        with contextlib.suppress(BlockingIOError):
                            try:
                                key.fileobj.send(b"X-Slow: 1\r\n")
                            except OSError:
                                self._closed_by_server(selector, key.fileobj, key.data)
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()

    @staticmethod
    def _closed_by_server(selector: selectors.BaseSelector, raw: socket.socket, held: Held) -> None:
        with contextlib.suppress(OSError):
            if raw.recv(1024):
                return  # an answer (none is expected): the close comes next
        held.closed = time.monotonic()
        selector.unregister(raw)
        raw.close()


def request(
    port: int, source: str, method: str, path: str, body: str | None = None, timeout: float = 3
) -> tuple[int, str]:
    """One request on a connection of its own from ``source``: (status, body)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        headers = {"Origin": "http://allowed.test:8080", "Content-Type": "text/plain"}
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        connection.close()


def visit(port: int, source: str, timeout: float = 3) -> float:
    """A page, then a Socket.IO connect over polling; seconds it took (raises on failure)."""
    started = time.monotonic()
    status, _ = request(port, source, "GET", "/", timeout=timeout)
    assert status == 200, f"page: HTTP {status}"
    base = "/socket.io/?EIO=4&transport=polling"
    status, body = request(port, source, "GET", base, timeout=timeout)
    assert status == 200 and body.startswith("0{"), f"handshake: HTTP {status} {body[:80]}"
    sid = json.loads(body[1:])["sid"]
    status, body = request(port, source, "POST", f"{base}&sid={sid}", "40", timeout=timeout)
    assert status == 200, f"connect: HTTP {status} {body[:80]}"
    status, body = request(port, source, "GET", f"{base}&sid={sid}", timeout=timeout)
    assert status == 200 and body.startswith("40{"), f"connect ack: HTTP {status} {body[:80]}"
    return time.monotonic() - started
