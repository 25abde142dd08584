"""A request head read by guardsite.request_heads is what the standard library reads.

Each head is parsed twice, by ``BaseHTTPRequestHandler.parse_request`` and by
``parse_request_head``, and every outcome a server acts on is compared: the
verdict, the request line's parts, keep-alive, every header as the email
parser stored it, any error answer, and what is left of the stream (the body).
"""

from __future__ import annotations

import functools
import http.client
import http.server
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardsite.request_heads import PlainHeaders, parse_request_head

REQUEST_PARTS = {
    "method": ["GET", "POST", "OPTIONS", "G\x00T", "", "GET /"],
    "space": [" ", "  ", "\t"],
    "target": ["/socket.io/?EIO=4&transport=polling", "//evil", "/a b", "/\x7f", "/é", "*"],
    "version": ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.10", "HTTP/1", "http/1.1", ""],
    "end": ["\r\n", "\n", "\r\r\n"],
}
NAMES = ["Host", "Origin", "connection", "Expect", "X-A", "Bad Name", "", "From ", "Fo:o"]
COLONS = [":", ": ", ":\t ", " :"]
VALUES = ["close", "Keep-Alive", "Upgrade", "100-continue", "v  ", "é", "a\x00b", "", "a\rb"]
ENDS = ["\r\n", "\r\n", "\r\n", "\n"]
EXTRA = ["", "", " folded\r\n", "\tfolded\r\n", "no colon\r\n"]


@st.composite
def request_heads(draw: Any) -> bytes:
    """A request head as a client might send it, plain or not, and a body after it."""
    line = "".join(
        draw(st.sampled_from(REQUEST_PARTS[part]))
        for part in ("method", "space", "target", "space", "version", "end")
    )
    headers = draw(
        st.lists(
            st.tuples(
                *(st.sampled_from(choices) for choices in (NAMES, COLONS, VALUES, ENDS, EXTRA))
            ),
            max_size=8,
        )
    )
    lines = "".join(
        name + colon + value + end + extra for name, colon, value, end, extra in headers
    )
    end = draw(st.sampled_from(["\r\n", "\r\n", "\n", ""]))
    return (line + lines + end + draw(st.sampled_from(["", "BODY"]))).encode("latin-1")


class Handler(http.server.BaseHTTPRequestHandler):
    """The request handler eventlet's HttpProtocol extends, on an in-memory stream."""

    protocol_version = "HTTP/1.1"

    def __init__(self, head: bytes, buffered: bool = False) -> None:  # no socket, no handle()
        # A server's stream is buffered (the head is read whole from the buffer); an
        # unbuffered one makes parse_request_head read it line by line.
        self.rfile = io.BufferedReader(io.BytesIO(head)) if buffered else io.BytesIO(head)
        self.wfile = io.BytesIO()
        self.client_address = ("127.0.0.1", 1)
        self.request_version = self.default_request_version
        self.raw_requestline = self.rfile.readline(65537)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return "Thu, 03 Dec 2026 00:00:00 GMT"


def stored(headers: Any) -> dict[str, Any]:
    """What the email parser stored, its policy and defects by kind (they have no equality);
    not PlainHeaders' look-up dict, which is its own."""
    return {
        **{key: value for key, value in vars(headers).items() if not key.startswith("_first")},
        "policy": repr(headers.policy),
        "defects": [type(defect).__name__ for defect in headers.defects],
    }


def outcome(handler: Handler, verdict: bool) -> dict[str, Any]:
    """Everything the server goes on to use, or sends."""
    headers = getattr(handler, "headers", None)
    return {
        "verdict": verdict,
        "command": getattr(handler, "command", None),
        "path": getattr(handler, "path", None),
        "version": handler.request_version,
        "requestline": getattr(handler, "requestline", None),
        "close": handler.close_connection,
        "headers": None if headers is None else stored(headers),
        "answered": handler.wfile.getvalue(),
        "left": handler.rfile.read(),
    }


def both(head: bytes, buffered: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The standard library's outcome and parse_request_head's, for the same head."""
    standard = Handler(head)
    standard_verdict = standard.parse_request()
    quick = Handler(head, buffered)
    full = functools.partial(http.server.BaseHTTPRequestHandler.parse_request, quick)
    verdict = parse_request_head(quick, full, quick.rfile if buffered else None)
    return outcome(standard, standard_verdict), outcome(quick, verdict)


@settings(max_examples=2000, deadline=None, database=None, derandomize=True)
@given(request_heads(), st.booleans())
def test_every_head_is_read_as_the_standard_library_reads_it(head: bytes, buffered: bool) -> None:
    standard, quick = both(head, buffered)
    assert quick == standard


def test_a_socket_io_head_is_read_without_the_email_parser(monkeypatch: Any) -> None:
    """Else the quick path would never run and the comparison above would prove nothing."""
    import email.parser

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the email parser was used")

    head = (
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Origin: https://shop.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    standard, _ = both(head)
    monkeypatch.setattr(email.parser.Parser, "parsestr", refuse)
    quick = Handler(head)
    full = functools.partial(http.server.BaseHTTPRequestHandler.parse_request, quick)
    assert outcome(quick, parse_request_head(quick, full)) == standard


def test_a_plain_heads_size_is_told_for_the_gates_header_cap() -> None:
    """The gate caps a head's size from it (``whitelist.head_bytes``) without adding up the
    environ; a head read by the standard library is not told, and the gate adds it up."""
    head = (
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Origin: https://shop.example.com\r\nCookie: " + b"c" * 9000 + b"\r\n\r\n"
    )
    for body, told in ((b"", len(head)), (b"BODY", len(head))):
        quick = Handler(head + body)
        full = functools.partial(http.server.BaseHTTPRequestHandler.parse_request, quick)
        assert parse_request_head(quick, full)
        assert quick.head_bytes == told
    folded = head.replace(b"Cookie: ", b"Cookie:\r\n ", 1)
    quick = Handler(folded)
    quick.head_bytes = len(head)  # a previous request's, on the same connection
    full = functools.partial(http.server.BaseHTTPRequestHandler.parse_request, quick)
    assert parse_request_head(quick, full)
    assert quick.head_bytes is None


@pytest.mark.parametrize("buffered", [False, True])
def test_heads_at_http_clients_limits_fail_as_they_do(buffered: bool) -> None:
    many = b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n"
    long = b"GET / HTTP/1.1\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n"
    for head in (many, long):
        standard, quick = both(head, buffered)
        assert quick == standard
        assert b" 431 " in standard["answered"]


@pytest.mark.parametrize("buffered", [False, True])
def test_heads_at_the_edges_of_http_clients_limits_are_read_as_it_reads_them(
    buffered: bool,
) -> None:
    """A line of exactly the longest length read in one piece, with its CRLF, and one
    byte over; the most header lines and one over."""
    prefix = b"X-A: "
    heads = [
        b"GET / HTTP/1.1\r\n" + prefix + b"b" * (length - len(prefix) - 2) + b"\r\n\r\n"
        for length in (65535, 65536, 65537, 65538)
    ]
    heads += [b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * count + b"\r\n" for count in (99, 100)]
    for head in heads:
        standard, quick = both(head, buffered)
        assert quick == standard


NAMES_ASKED = ["Host", "host", "CONNECTION", "X-A", "x-missing", "Content-Type"]


def looked_up(headers: Any) -> list[Any]:
    return [headers.get(name, "-") for name in NAMES_ASKED] + [
        headers["X-A"],
        "connection" in headers,
        headers.get_all("X-A"),
    ]


def set_by_hand() -> tuple[Any, Any]:
    """PlainHeaders and the email package's message, given the same headers one by one."""
    plain, standard = PlainHeaders(), http.client.HTTPMessage()
    for headers in (plain, standard):
        for name, value in [("Host", "a"), ("X-A", "1"), ("x-a", "2"), ("Connection", "close")]:
            headers.set_raw(name, value)
    return plain, standard


def read_from_a_head() -> tuple[Any, Any]:
    """... and the same headers read from a plain head, as a server reads them."""
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a:\t2\r\nConnection: close\r\n\r\n"
    quick, standard = Handler(head, buffered=True), Handler(head)
    full = functools.partial(http.server.BaseHTTPRequestHandler.parse_request, quick)
    assert parse_request_head(quick, full, quick.rfile) and standard.parse_request()
    assert type(quick.headers) is PlainHeaders
    return quick.headers, standard.headers


@pytest.mark.parametrize("made", [set_by_hand, read_from_a_head])
def test_plain_headers_answer_as_the_email_package_does_before_and_after_changes(
    made: Any,
) -> None:
    """Looked up through a dict, which every kind of change to the headers must refresh."""
    plain, standard = made()
    changes = [
        lambda h: h.__setitem__("Content-Type", "text/plain"),
        lambda h: h.__delitem__("x-a"),
        lambda h: h.set_raw("X-A", "3"),
        lambda h: h.replace_header("connection", "keep-alive"),
        lambda h: h.add_header("X-A", "4", q="1"),
        lambda h: h.set_param("charset", "utf-8"),
        lambda h: h.set_boundary("b"),
        lambda h: h.del_param("charset"),
    ]
    assert looked_up(plain) == looked_up(standard)
    for change in changes:
        change(plain)
        change(standard)
        assert looked_up(plain) == looked_up(standard)
