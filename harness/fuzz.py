"""A bounded fuzzer of raw HTTP requests and Engine.IO/Socket.IO packets against a real server.

Used by tests/test_fuzz.py (a short run) and bench/hostile.py (a long one). Every
input is built from a seeded random generator, so a run can be repeated; each
is sent on its own connection from a refused origin (or none), and what comes
back is classified. A refused origin that ever sees the welcome event is a
wrong decision; an HTTP 5xx is a server error.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import websocket

WELCOME = "permission.message"
REFUSED_ORIGINS = (
    "http://evil.example",
    "null",
    "http://allowed.test.evil.example",
    "http://allowed.test@evil.example",
    "",
)
METHODS = ("GET", "POST", "PUT", "OPTIONS", "DELETE", "G\x00T", "")
TRANSPORTS = ("polling", "websocket", "flashsocket", "", "polling\r\nX: y")
PACKET_TEXT = "0123456789/,[]{}\"':ab\x1e\x00\\é𝄞 "


@dataclass
class FuzzReport:
    """What a run sent and what came back."""

    inputs: int = 0
    wrong_decisions: int = 0
    server_errors: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # The first input behind each wrong decision or server error, to reproduce it.
    examples: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "inputs": self.inputs,
            "wrong_decisions": self.wrong_decisions,
            "server_errors": self.server_errors,
            "outcomes": dict(self.outcomes),
            "examples": self.examples,
        }


def junk(rng: random.Random, limit: int = 64) -> str:
    return "".join(rng.choice(PACKET_TEXT) for _ in range(rng.randrange(limit)))


def socketio_packet(rng: random.Random) -> str:
    """A Socket.IO packet, well-formed or not: type, attachments, namespace, id, data."""
    kind = rng.choice("0123456789")
    attachments = f"{rng.randrange(10 ** rng.randrange(1, 12))}-" if kind in "56" else ""
    namespace = rng.choice(["", "/", "/late,", "/admin,", "/" + junk(rng, 8) + ","])
    ack = rng.choice(["", "1", "99999999999999999999"])
    data = rng.choice(
        [
            json.dumps(["connect"]),
            json.dumps(["disconnect"]),
            json.dumps(["echo", junk(rng)]),
            json.dumps({"token": junk(rng)}),
            json.dumps([{"_placeholder": True, "num": rng.randrange(-2, 20)}]),
            "[" * rng.randrange(1, 5000),
            junk(rng),
            "",
        ]
    )
    return kind + attachments + namespace + ack + data


def engineio_payload(rng: random.Random) -> str:
    """An Engine.IO polling payload: packets separated by the record separator."""
    packets = []
    for _ in range(rng.randrange(1, 6)):
        kind = rng.choice("0123456789b")
        body = socketio_packet(rng) if kind == "4" else junk(rng, 32)
        packets.append(kind + body)
    return "\x1e".join(packets)


def http_request(rng: random.Random, sid: str | None) -> tuple[bytes, bool]:
    """One raw HTTP request to the Socket.IO path, from well-formed to broken.

    The flag says whether it is whole (worth waiting for an answer).
    """
    method = rng.choice(METHODS)
    query = {
        "EIO": rng.choice(["4", "3", "5", "", "4\x00"]),
        "transport": rng.choice(TRANSPORTS),
    }
    if sid is not None and rng.random() < 0.8:
        query["sid"] = sid
    if rng.random() < 0.1:
        query["j"] = "0"
    if rng.random() < 0.1:
        query[junk(rng, 8)] = junk(rng, 16)
    target = "/socket.io/?" + "&".join(f"{k}={v}" for k, v in query.items())
    if rng.random() < 0.05:
        target = rng.choice(["/socket.io", "/socket.io/../admin/", "*", "/socket.io/%00"])
    body = engineio_payload(rng).encode("utf-8", "surrogatepass") if method == "POST" else b""
    headers = [("Host", "localhost")]
    origin = rng.choice(REFUSED_ORIGINS)
    if origin:
        headers.append(("Origin", origin))
    if rng.random() < 0.2:
        headers.append(("Referer", rng.choice(["http://evil.example/x", junk(rng), "null"])))
    if rng.random() < 0.1:
        headers += [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if rng.random() < 0.05:
        headers.append((f"X-Pad-{rng.randrange(99)}", "a" * rng.randrange(20_000)))
    length = len(body)
    if rng.random() < 0.1:
        length = rng.choice([-1, 0, length + 10, 1_000_001, 10**12])
    if method == "POST" or rng.random() < 0.1:
        headers.append(("Content-Length", str(length)))
    if rng.random() < 0.05:
        headers.append(("Transfer-Encoding", "chunked"))
    head = f"{method} {target} HTTP/1.{rng.choice('10')}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = head.encode("latin-1", "replace") + b"\r\n" + body
    if rng.random() < 0.1:  # cut short: half a request, then a hang-up
        return request[: rng.randrange(len(request) + 1)], False
    return request, True


def send_http(address: tuple[str, int], request: bytes, whole: bool, timeout: float) -> str:
    """Send one request, read the status line (if any) and hang up."""
    with socket.create_connection(address, timeout=timeout) as connection:
        connection.sendall(request)
        if not whole:
            return "hung up"
        try:
            head = connection.recv(4096)
        except TimeoutError:
            return "no answer"
    if not head:
        return "closed"
    if WELCOME.encode() in head:
        return "welcomed"
    if not head.startswith(b"HTTP/"):
        return "no status line"
    return head.split(b" ", 2)[1].decode("latin-1")


def raw_frame(rng: random.Random) -> bytes:
    """A WebSocket frame with any opcode and flags, masked or not, its length possibly a lie."""
    payload = junk(rng).encode()
    first = (
        (rng.random() < 0.5) << 7 | rng.randrange(8) << 4 * (rng.random() < 0.1) | rng.randrange(16)
    )
    masked = rng.random() < 0.9
    length = len(payload) if rng.random() < 0.9 else rng.choice([126, 127])
    head = bytes([first & 0xFF, masked << 7 | min(length, 127)])
    if length == 126:
        head += rng.randrange(65536).to_bytes(2, "big")
    elif length == 127:
        head += rng.randrange(2**63).to_bytes(8, "big")
    key = rng.randbytes(4) if masked else b""
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if masked else payload
    return head + key + body


def websocket_session(url: str, rng: random.Random, timeout: float) -> str:
    """Open a WebSocket session from a refused origin and send it a few random frames."""
    origin = rng.choice(REFUSED_ORIGINS) or None
    endpoint = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    try:
        connection = websocket.create_connection(
            endpoint, origin=origin, suppress_origin=origin is None, timeout=timeout
        )
    except (OSError, websocket.WebSocketException) as error:
        return f"ws refused ({type(error).__name__})"
    seen = ""
    try:
        connection.recv()
        for _ in range(rng.randrange(1, 6)):
            choice = rng.random()
            if choice < 0.5:
                connection.send("4" + socketio_packet(rng))
            elif choice < 0.7:
                connection.send_binary(rng.randbytes(rng.randrange(1, 64)))
            elif choice < 0.85:
                connection.sock.sendall(raw_frame(rng))
            else:
                connection.send(engineio_payload(rng))
        connection.settimeout(0.2)
        for _ in range(5):
            seen += connection.recv() or ""  # ends with a timeout or the server's close
    except (OSError, websocket.WebSocketException):
        pass
    finally:
        connection.close()
        connection.shutdown()
    return "welcomed" if WELCOME in seen else "ws closed"


def open_session(url: str, origin: str) -> str | None:
    """A polling Engine.IO session from ``origin``, for packets to aim at."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n"
        f"Origin: {origin}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(4096):
            received += chunk
    body = received.partition(b"\r\n\r\n")[2]
    try:
        return json.loads(body[1:])["sid"]
    except (ValueError, KeyError):
        return None


def inputs(url: str, seed: int) -> Iterator[tuple[str, Callable[[], str]]]:
    """An endless, seeded stream of attacks: what each is, and a call that sends it."""
    rng = random.Random(seed)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    address = (host, int(port))
    sid: str | None = None
    while True:
        if sid is None or rng.random() < 0.05:
            sid = open_session(url, rng.choice(REFUSED_ORIGINS[:2]))
        if rng.random() < 0.15:
            seed = rng.random()
            yield (
                f"websocket session, seed {seed}",
                partial(websocket_session, url, random.Random(seed), 5),
            )
        else:
            request, whole = http_request(rng, sid)
            yield repr(request[:2000]), partial(send_http, address, request, whole, 2)


def fuzz(
    url: str,
    *,
    seed: int,
    count: int,
    seconds: float,
    every: int = 100,
    meanwhile: Callable[[], None] = lambda: None,
) -> FuzzReport:
    """Send at most ``count`` inputs for at most ``seconds``; classify every answer.

    ``meanwhile`` runs after every ``every`` inputs (an allowed client's visit).
    """
    report = FuzzReport()
    deadline = time.monotonic() + seconds
    for what, attack in inputs(url, seed):
        if report.inputs >= count or time.monotonic() > deadline:
            break
        if report.inputs % every == every - 1:
            meanwhile()
        try:
            outcome = attack()
        except OSError as error:
            outcome = f"error ({type(error).__name__})"
        report.inputs += 1
        report.outcomes[outcome] += 1
        if outcome == "welcomed":
            report.wrong_decisions += 1
            report.examples.setdefault(outcome, what)
        elif outcome.startswith("5"):
            report.server_errors += 1
            report.examples.setdefault(outcome, what)
    return report
