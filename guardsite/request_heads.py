"""Read an HTTP request head without the email parser, where it is plain enough to need none.

eventlet's server parses each request head with the standard library's
``BaseHTTPRequestHandler.parse_request``, which hands the header lines to the
``email`` package's feed parser: about 16 µs a request, a sixth of a Socket.IO
WebSocket connect's own work and more of a long-polling one's four requests.
Every Socket.IO client and browser sends heads that need none of what that
parser is for (folded lines, malformed names, odd line ends). Such a head is
read here into the very same ``http.client.HTTPMessage``; any other head, and
every error, goes to the standard library, which reads the same lines again
from a copy, so its answers (400, 431, 505, ``Expect: 100-continue``) stay its
own. ``tests/test_request_heads.py`` compares the two on generated heads.
"""

from __future__ import annotations

import http.client
import io
import re
from collections.abc import Callable
from email.policy import compat32
from operator import itemgetter
from typing import Any

# http.client's limits on header lines (_MAXLINE, _MAXHEADERS): reading stops where
# its reading would fail, and the standard library then fails the same way.
MAX_LINE = 65536
MAX_HEADERS = 100
LINE_ENDS = (b"\r\n", b"\n", b"")

# "GET /path HTTP/1.1": a token, one space, a target with no whitespace or controls,
# one space, HTTP/1.0 or HTTP/1.1. A target starting "//" is left to the standard
# library, which rewrites it.
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
REQUEST_LINE = re.compile(rb"(%s) ((?!//)[\x21-\x7e]+) (HTTP/1\.[01])\r?\n" % TOKEN)
# "Name: value": a token, a colon, and printable ASCII, spaces or tabs, ending in CRLF.
# Every header line and the empty line that ends them: a token, a colon, and printable
# ASCII, spaces or tabs, each line ending in CRLF. Greedy: the value's class holds no
# CR, so it stops at the line's end without trying it at every character.
HEADER_LINES = re.compile(rb"(?:%s:[\x20-\x7e\t]*\r\n)*\r\n" % TOKEN)
# One line of such a head: the name, and the value as the email parser stores it (without
# the spaces and tabs that lead it).
HEADER_FIELD = re.compile(r"([^:\r\n]*):[ \t]*([^\r\n]*)\r\n")


def parse_request_head(
    handler: Any,
    parse_in_full: Callable[[], bool],
    buffered: Any = None,
    shorter_than: int = MAX_LINE + 1,
) -> bool:
    """``BaseHTTPRequestHandler.parse_request`` for ``handler``, quicker on a plain head.

    ``handler.raw_requestline`` is read; its header lines are read here from
    ``handler.rfile``. ``parse_in_full`` is the standard library's method,
    called with ``rfile`` reading a copy of those lines when the head is not plain.
    ``handler.head_bytes`` is then the size of a plain head as received, else None.

    ``buffered`` is the buffered stream ``rfile`` reads from, if any: a plain head
    of fewer than ``shorter_than`` bytes already in its buffer (a client writes its
    head at once) is read from there whole, in one call, instead of a line at a time.
    """
    handler.head_bytes = None
    raw = handler.raw_requestline
    request = REQUEST_LINE.fullmatch(raw) if isinstance(raw, bytes) else None
    if request is None:  # read by the standard library from the start
        return parse_in_full()
    lines: list[bytes] = []
    read = _read_buffered_headers(buffered, shorter_than, lines) if buffered else None
    if not lines:
        read = _read_plain_headers(handler.rfile, lines)
    if read is None:
        rfile = handler.rfile
        handler.rfile = io.BytesIO(b"".join(lines))
        try:
            return parse_in_full()
        finally:
            handler.rfile = rfile
    headers, first = read
    # The request line matched: one space between each of its three parts.
    handler.requestline = raw.decode("ascii").rstrip("\r\n")
    method, target, version = handler.requestline.split(" ")
    handler.command, handler.path, handler.request_version = method, target, version
    message_class = handler.MessageClass
    if message_class is http.client.HTTPMessage:
        message = PlainHeaders(headers, first)
    else:
        message = message_class()
        for name, value in headers:
            message.set_raw(name, value)
    message.set_payload("")  # the feed parser's, for the empty body after the head
    handler.headers = message
    handler.head_bytes = len(raw) + sum(map(len, lines))
    persistent = version == "HTTP/1.1" and handler.protocol_version >= "HTTP/1.1"
    handler.close_connection = not persistent
    connection = message.get("Connection", "").lower()
    if connection == "close":
        handler.close_connection = True
    elif connection == "keep-alive" and handler.protocol_version >= "HTTP/1.1":
        handler.close_connection = False
    return True


class PlainHeaders(http.client.HTTPMessage):
    """A plain head's headers, each looked up through a dict.

    eventlet and the standard library ask for several headers a request, and
    ``Message.get`` scans every header each time. The dict is built at the first
    look-up and again whenever the header list is another list or of another
    length than it was built from, or a header was replaced in place; the value is
    returned through the policy exactly as ``Message.get`` returns it.
    """

    _first: dict[str, tuple[str, Any]] | None = None
    _first_list: list[Any] | None = None
    _first_length = 0
    _first_verbatim: dict[str, tuple[str, str]] | None = None

    def __init__(
        self,
        headers: list[tuple[str, str]] | None = None,
        first: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        """Optionally the head's headers as ``set_raw`` would store them, and their dict."""
        super().__init__()
        if headers is not None and first is not None:
            self._headers = headers
            self._first, self._first_list, self._first_length = first, headers, len(headers)
            # A plain head's values are ASCII, which the default policy returns as they are.
            if self.policy is compat32:
                self._first_verbatim = first

    @property
    def type(self) -> str:
        """``get_content_type()``: eventlet reads ``type`` first (``mimetools`` had it),
        and its absence cost an ``AttributeError`` on every request without a Content-Type."""
        return self.get_content_type()

    def get(self, name: str, failobj: Any = None) -> Any:
        headers = self._headers
        first = self._first
        if first is None or self._first_list is not headers or self._first_length != len(headers):
            first = {}
            for key, value in headers:
                first.setdefault(key.lower(), (key, value))
            self._first, self._first_list, self._first_length = first, headers, len(headers)
        found = first.get(name.lower())
        if found is None:
            return failobj
        return found[1] if first is self._first_verbatim else self.policy.header_fetch_parse(*found)

    def replace_header(self, _name: str, _value: Any) -> None:
        self._first = None
        super().replace_header(_name, _value)


def _read_plain_headers(
    rfile: Any, lines: list[bytes]
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, str]]] | None:
    """Each header line's name and value as the email parser stores them, and the first
    of each name by its lower case; None if a line is not plain, the head does not end
    with an empty line, or it has an ``Expect`` header (``100-continue`` is the standard
    library's to answer).

    The lines are read into ``lines`` as ``http.client`` reads them, up to the first
    line it would refuse, and checked at once with one expression; on None the
    standard library reads them again.
    """
    readline = rfile.readline
    while True:
        line = readline(MAX_LINE + 1)
        lines.append(line)
        if len(line) > MAX_LINE or len(lines) > MAX_HEADERS or line in LINE_ENDS:
            break
    if line != b"\r\n" or len(lines) > MAX_HEADERS:
        return None
    head = b"".join(lines)
    if HEADER_LINES.fullmatch(head) is None:
        return None
    return _plain_headers(head)


def _read_buffered_headers(
    buffered: Any, shorter_than: int, lines: list[bytes]
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, str]]] | None:
    """``_read_plain_headers`` for a plain head whole in ``buffered``'s buffer, read at once
    (into ``lines``) to its empty line; nothing is read, and ``lines`` stays empty, if
    the buffer holds no such head of fewer than ``shorter_than`` bytes."""
    plain = HEADER_LINES.match(buffered.peek(shorter_than))
    if plain is None or plain.end() >= shorter_than:
        return None
    head = plain.group()
    if head.count(b"\r\n") > MAX_HEADERS:  # http.client counts the empty line too
        return None
    lines.append(buffered.read(len(head)))
    return _plain_headers(head)


def _plain_headers(
    head: bytes,
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, str]]] | None:
    """The headers of a head ``HEADER_LINES`` matched whole, as ``_read_plain_headers`` says."""
    # ASCII only, each line "name:value" with no CR or LF inside (HEADER_LINES).
    headers: list[tuple[str, str]] = HEADER_FIELD.findall(head.decode("ascii"))
    # The first of each name: a dict keeps the last value it is given for a key.
    ordered = headers[::-1]
    first = dict(zip(map(str.lower, map(itemgetter(0), ordered)), ordered, strict=True))
    return None if "expect" in first else (headers, first)
