"""WebSockets under gevent and threading: read in the request's own greenlet, capped.

python-engineio serves these modes' WebSockets with simple-websocket, which
python-engineio builds without a size limit: a message, however large or
fragmented, was buffered whole, and permessage-deflate (which simple-websocket
accepts whenever a client offers it) inflated each 4 KB read without a bound,
so 1 MB on the wire could become a gigabyte in the server. It also re-parses
the handshake with wsproto's HTTP layer and gives every socket a reader
greenlet (or thread) besides python-engineio's own two.

``WSProtoWebSocket`` takes its place (``websockets.use_guarded_websockets``):

* it answers the upgrade itself, after the gate checked it is RFC 6455
  (``whitelist.gate.upgrades``), with no extension and no subprotocol;
* frames are read and unmasked by wsproto's frame layer (its documented
  low-level ``wsproto.connection.Connection``), in the caller of ``wait()``:
  python-engineio's request greenlet, no reader of its own;
* a message may hold at most ``max_http_buffer_size`` bytes, and until its
  session has a welcomed socket at most ``WHITELIST_PRECONNECT_BYTES``, counted
  as it arrives, frame by frame, into one buffer (a part costs no more than
  its bytes, however many empty fragments come): the server closes with 1009
  past either, as eventlet's WebSocket does here (``eventlet_websocket``).

The connection's socket comes from the WSGI server: ``gunicorn.socket``,
``werkzeug.socket``, or gevent.pywsgi's request stream (``whitelist.E115``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from whitelist.engine.locks import bookkeeping_lock, io_lock

# RFC 6455: "Message Too Big".
MESSAGE_TOO_BIG = 1009
# RFC 6455 section 4.2.2: appended to the client's key for Sec-WebSocket-Accept.
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# A read of the socket: large messages in few calls, and no more than this past a limit.
RECEIVE_BYTES = 65_536
# After closing for a limit: how long, and how much, to read on for the client's close.
DRAIN_SECONDS = 2.0
DRAIN_BYTES = 1_048_576


class NoSocketError(RuntimeError):
    """The WSGI server does not hand its connection's socket to the app."""


def accept_token(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + ACCEPT_GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def connection_socket(environ: dict[str, Any]) -> tuple[socket.socket, str]:
    """The client's socket, and which server gave it (how the request must end)."""
    for key, server in (("gunicorn.socket", "gunicorn"), ("werkzeug.socket", "werkzeug")):
        if key in environ:
            return environ[key], server
    if environ.get("SERVER_SOFTWARE", "").startswith("gevent"):
        # gevent.pywsgi hands no socket on: an upgrade's wsgi.input is the connection's
        # buffered reader (another request's wraps it as ``rfile``), whose raw file has it.
        stream = environ.get("wsgi.input")
        stream = getattr(stream, "rfile", stream)
        sock = getattr(getattr(stream, "raw", None), "_sock", None)
        if sock is not None:
            return sock, "gevent"
    raise NoSocketError(
        "The WSGI server gives no socket for a WebSocket (gunicorn, gevent.pywsgi and werkzeug do)"
    )


class WSProtoWebSocket:
    """One WebSocket, as python-engineio's handler uses it: ``wait``, ``send``, ``close``.

    ``preconnect_limit(eio_sid)`` is the message size allowed now: the small
    budget while the session has no welcomed socket, None once it has one.
    python-engineio sends from its writer greenlet while its handler waits in
    ``wait()``, which answers pings and closes: one lock keeps wsproto's state
    whole between the two (never held across I/O), another keeps their writes
    from interleaving (gevent lets one greenlet at a time wait to write a socket).
    """

    def __init__(
        self,
        handler: Callable[[Any], Any],
        server: Any,
        preconnect_limit: Callable[[str], int | None],
    ) -> None:
        self.app = handler
        self.eio_sid: str = getattr(handler, "eio_sid", "")
        self.message_limit = int(server.max_http_buffer_size)
        self.preconnect_limit = preconnect_limit
        # python-engineio sets its ping deadline on ``_sock`` (a read that long idle ends).
        self._sock: socket.socket | None = None
        self._protocol = Connection(ConnectionType.SERVER)
        self._lock = bookkeeping_lock()
        self._write_lock = io_lock(getattr(server, "async_mode", "threading"))
        self._closed = False
        self._pending: deque[Any] = deque()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
        if not key.isascii() or not key:
            # The gate refuses this first (whitelist.gate.upgrades); a tuple is a body to
            # python-engineio, a list would be packets to encode.
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return (b"Bad WebSocket upgrade",)
        sock, served_by = connection_socket(environ)
        self._sock = sock
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_token(key).encode("ascii")
            + b"\r\n\r\n"
        )
        try:
            result = self.app(self)
        finally:
            self._end()
        # How each server learns that the connection is spent, not to be answered.
        if served_by == "gunicorn":
            raise StopIteration
        if served_by == "werkzeug":
            raise ConnectionError("WebSocket closed")
        # gevent.pywsgi reads the next request unless its reader is closed (the socket
        # stays its own): it took the client's close frame for a request line.
        with contextlib.suppress(Exception):
            environ["wsgi.input"].close()
        return result

    def send(self, message: str | bytes) -> None:
        """One message, as python-engineio encoded it; OSError once the connection is closed."""
        event = BytesMessage(data=message) if isinstance(message, bytes) else TextMessage(message)
        with self._write_lock:
            with self._lock:
                if self._closed or self._protocol.state is not ConnectionState.OPEN:
                    raise OSError("WebSocket closed")
                data = self._protocol.send(event)
            self._socket().sendall(data)

    def wait(self) -> str | bytes | None:
        """The next whole message; None once the client closed, the connection broke or a
        message passed its limit (closed with 1009)."""
        text_so_far = io.StringIO()
        bytes_so_far = bytearray()
        size = 0
        while True:
            while self._pending:
                event = self._pending.popleft()
                if isinstance(event, TextMessage | BytesMessage):
                    part = _size(event.data)
                    size += part
                    limit = self._limit()
                    if size > limit:
                        reason = f"Message above the limit of {limit} bytes"
                        self._close(MESSAGE_TOO_BIG, reason, shutdown=False)
                        self._drain()
                        return None
                    if event.message_finished and size == part:  # in one part: no copy
                        return event.data if isinstance(event.data, str) else bytes(event.data)
                    if isinstance(event, TextMessage):
                        text_so_far.write(event.data)
                    else:
                        bytes_so_far += event.data
                    if event.message_finished:
                        if isinstance(event, TextMessage):
                            return text_so_far.getvalue()
                        return bytes(bytes_so_far)
                elif isinstance(event, Ping):
                    self._reply(event.response())
                elif isinstance(event, CloseConnection):
                    # The client's close (answered), a protocol error (1002, 1007: told),
                    # or the connection gone (1006: nothing to tell).
                    if event.code != 1006:
                        self._close(event.code, event.reason)
                    self._closed = True
                    return None
            if self._closed:
                return None
            try:
                data = self._socket().recv(RECEIVE_BYTES)
            except (OSError, ValueError):  # ValueError: an SSL socket shut down meanwhile
                data = b""
            with self._lock:
                try:
                    self._protocol.receive_data(data or None)
                except LocalProtocolError:  # closed meanwhile (the writer's close)
                    return None
                # Every event of what came: one read may end a message and start another.
                self._pending.extend(self._protocol.events())

    def close(self) -> None:
        """Close as the server: the close frame, then the socket's both ways (which ends a
        ``wait()`` blocked on it)."""
        self._close(1000, None)

    def _limit(self) -> int:
        # The budget as it stands once the frame is in: a connect sent over polling may
        # have been welcomed while this connection waited (an upgrade).
        budget = self.preconnect_limit(self.eio_sid)
        return self.message_limit if budget is None else min(budget, self.message_limit)

    def _reply(self, event: Any) -> None:
        try:
            with self._write_lock:
                with self._lock:
                    if self._protocol.state is not ConnectionState.OPEN:
                        return
                    data = self._protocol.send(event)
                self._socket().sendall(data)
        except OSError:
            self._closed = True

    def _close(self, code: int, reason: str | None, *, shutdown: bool = True) -> None:
        # Under the write lock from the frame's making to the shutdown: no message the
        # writer made before it may follow the close frame out (RFC 6455 section 5.5.1),
        # and no write may meet an SSL socket half shut down (it would go out in clear).
        with self._write_lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                try:
                    data = self._protocol.send(CloseConnection(code=code, reason=reason))
                except LocalProtocolError:  # closed already, both ways
                    data = b""
            try:
                if data:
                    self._socket().sendall(data)
                if shutdown:
                    self._socket().shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client left first

    def _drain(self) -> None:
        """Read on, discarding, until the client's own close (a bounded while).

        The client is still sending the message that passed the limit: a socket
        closed with bytes unread answers with a reset, which can destroy the close
        frame, and its code, before the client reads it.
        """
        if any(isinstance(event, CloseConnection) for event in self._pending):
            return  # it came in the same read as the message's last part
        sock = self._socket()
        deadline = time.monotonic() + DRAIN_SECONDS
        left = DRAIN_BYTES
        with contextlib.suppress(OSError, LocalProtocolError):
            while left > 0 and (seconds := deadline - time.monotonic()) > 0:
                sock.settimeout(seconds)
                data = sock.recv(RECEIVE_BYTES)
                if not data:
                    return
                left -= len(data)
                with self._lock:
                    self._protocol.receive_data(data)
                    if any(isinstance(event, CloseConnection) for event in self._protocol.events()):
                        return

    def _end(self) -> None:
        """After python-engineio's handler: nothing more is read or written here."""
        self._closed = True
        with self._write_lock, contextlib.suppress(OSError):
            self._socket().shutdown(socket.SHUT_RDWR)

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise OSError("WebSocket not open")
        return self._sock


def _size(data: str | bytes) -> int:
    """Bytes on the wire of a message part (UTF-8 for text)."""
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode())
