"""No client byte starts a log line, forges one or drives a terminal, in either log format.

A real runsocket (``--access-log``, behind one proxy) gets every value a client
controls with each control character in it: ESC, BEL, CR, LF, NEL (U+0085),
U+2028 and U+2029, and CR LF in a header through obsolete line folding (which
eventlet keeps in the value). Each character is followed by a marker naming the field and
the character, so the log tells which value came through raw, and a marker at
the start of a line is a forged line.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.live import (
    LiveServer,
    free_port,
    migrated_copy,
    server_env,
    start_gunicorn,
    wait_for_gunicorn,
    wait_until,
)
from tests.clients import polling_handshake
from tests.conftest import ALLOWED

CONTROLS = {
    "ESC": "\x1b",
    "BEL": "\x07",
    "CR": "\r",
    "LF": "\n",
    "NEL": "\u0085",
    "LS": "\u2028",
    "PS": "\u2029",
    "FOLD": "\r\n ",  # a header's obsolete line folding
}
# A header cannot carry a raw CR or LF but in a fold; a request line, not at all.
HEADER_ONLY = {"CR", "LF"}
LINE_ONLY = HEADER_ONLY | {"FOLD"}
FORGED = "FORGED"


def marker(field: str, name: str) -> str:
    return f"{FORGED}-{field}-{name}-"


def payload(field: str, names: list[str], *, quoted: bool = False) -> str:
    """Each control character followed by its marker; ``quoted`` as UTF-8 percent-escapes."""
    text = "".join(CONTROLS[name] + marker(field, name) for name in names)
    return urllib.parse.quote(text, safe="") if quoted else text


def header_payload(field: str, *, fold: bool = True) -> bytes:
    """Raw bytes for a header (or, without ``fold``, a request target), UTF-8 as a client
    would send them."""
    return payload(field, raw_names(fold=fold)).encode()


def raw_names(*, fold: bool) -> list[str]:
    return [name for name in CONTROLS if name not in (HEADER_ONLY if fold else LINE_ONLY)]


def exchange(server: LiveServer, request: bytes) -> bytes:
    """Send one raw HTTP/1.1 request; read the answer until the server closes."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def request(
    target: bytes, headers: dict[str, bytes], method: str = "GET", body: bytes = b""
) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    lines += [b"Connection: close", b"Content-Length: " + str(len(body)).encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def session_of(answer: bytes) -> bytes:
    """The sid of a polling handshake's answer ("0{...}")."""
    return json.loads(answer.split(b"\r\n\r\n", 1)[1][1:])["sid"].encode()


ENGINEIO = b"/socket.io/?EIO=4&transport=polling"
REFUSED = b"http://refused.test"


@dataclass(frozen=True)
class Injection:
    field: str
    names: list[str]
    # Written by the server at its default levels: its escaped form must be in the log.
    logged: bool
    # Sent as bytes in a header or the request line, which the server reads as Latin-1.
    latin1: bool = False


def inject_everything(server: LiveServer) -> list[Injection]:
    """Send each value a client controls with control characters in it; say what was sent."""
    ours = ALLOWED.encode()
    raw, line = raw_names(fold=True), raw_names(fold=False)
    every = [name for name in CONTROLS if name != "FOLD"]

    def quoted(field: str) -> bytes:
        return payload(field, every, quoted=True).encode()

    # The session id: unknown (python-engineio's "Invalid session", at ERROR the first
    # time), and a known one with more after it (at INFO, below the default level).
    exchange(server, request(ENGINEIO + b"&sid=" + quoted("sid"), {}))
    known = polling_handshake(server.url, ALLOWED).encode()
    exchange(server, request(ENGINEIO + b"&sid=" + known + quoted("knownsid"), {"Origin": ours}))
    # Origin and Referer of a request to a known session: refused, and logged.
    target = ENGINEIO + b"&sid=" + polling_handshake(server.url, ALLOWED).encode()
    exchange(server, request(target, {"Origin": b"http://evil.test/" + header_payload("origin")}))
    exchange(server, request(target, {"Referer": b"http://evil.test/" + header_payload("referer")}))
    # The client address behind one trusted proxy (the test client, WHITELIST_PROXY_COUNT=1).
    forwarded = {"Origin": REFUSED, "X-Forwarded-For": header_payload("xff")}
    sid = session_of(exchange(server, request(ENGINEIO, forwarded)))
    exchange(server, request(ENGINEIO + b"&sid=" + sid, forwarded, "POST", b"40"))
    # The namespace of a connect (python-socketio answers an unknown one itself).
    sid = session_of(exchange(server, request(ENGINEIO, {"Origin": REFUSED})))
    packet = b"40/ns" + payload("namespace", every).encode() + b","
    exchange(server, request(ENGINEIO + b"&sid=" + sid, {"Origin": REFUSED}, "POST", packet))
    # User-Agent, Host, the path and the query (raw in the request line, and escaped).
    agent = {"Origin": ours, "User-Agent": header_payload("useragent")}
    exchange(server, request(ENGINEIO, agent))
    exchange(server, request(b"/", {"Host": b"evil" + header_payload("host")}))
    exchange(server, request(b"/nowhere/" + header_payload("path", fold=False), {}))
    exchange(server, request(b"/nowhere/" + quoted("quotedpath"), {}))
    query = ENGINEIO + b"&x=" + header_payload("query", fold=False)
    exchange(server, request(query, {"Origin": ours}))
    return [
        Injection("sid", every, logged=True),
        Injection("knownsid", every, logged=False),
        Injection("origin", raw, logged=True, latin1=True),
        Injection("referer", raw, logged=True, latin1=True),
        # Only some refusals are logged (a few a minute): the access log names the peer.
        Injection("xff", raw, logged=False, latin1=True),
        Injection("namespace", every, logged=False),
        Injection("useragent", raw, logged=False, latin1=True),
        Injection("host", raw, logged=True, latin1=True),
        Injection("path", line, logged=True, latin1=True),
        Injection("quotedpath", every, logged=False),
        Injection("query", line, logged=True, latin1=True),
    ]


def as_received(injection: Injection, name: str) -> str:
    """The character as the server holds it: a header's UTF-8 bytes read as Latin-1."""
    char = CONTROLS[name]
    return char.encode().decode("latin-1") if injection.latin1 else char


def shown(text: str) -> str:
    """``text`` escaped as the log should show it: ``\\x1b``, ``\\x85``, ``\\u2028``."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def reached_raw(log: str, sent: list[Injection]) -> list[str]:
    """The injected values whose control character is in the log as it came."""
    return [
        f"{injection.field}/{name}"
        for injection in sent
        for name in injection.names
        if as_received(injection, name) + marker(injection.field, name) in log
    ]


def forged_lines(log: str) -> list[str]:
    """Lines, as any reader splits them (Unicode line breaks too), that a client began."""
    return [line for line in log.splitlines() if line.lstrip().startswith(FORGED)]


def readable(log: str, log_format: str) -> str:
    """The log as people read it: JSON lines decoded into their values."""
    if log_format == "plain":
        return log
    values = []
    for line in log.split("\n"):
        if line.startswith("{"):
            values.extend(str(value) for value in json.loads(line).values())
        else:
            values.append(line)
    return "\n".join(values)


def missing_escapes(text: str, sent: list[Injection]) -> list[str]:
    """The logged injections whose escaped form is nowhere in ``text``."""
    missing = []
    for injection in sent:
        for name in injection.names if injection.logged else ():
            escape, after = shown(as_received(injection, name)), marker(injection.field, name)
            # eventlet's access log drops the spaces of X-Forwarded-For (a fold's too).
            forms = {escape + after, escape.replace(" ", "") + after}
            if not any(form in text for form in forms):
                missing.append(f"{injection.field}/{name}")
    return missing


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_client_values_reach_the_log_escaped(
    start_server: Callable[..., LiveServer], log_format: str
) -> None:
    server = start_server(
        ALLOWED,
        options=("--access-log",),
        GUARDSITE_LOG_FORMAT=log_format,
        WHITELIST_PROXY_COUNT="1",
        WHITELIST_TRUSTED_PROXIES="127.0.0.1",  # the test client, as if it were the proxy
    )
    sent = inject_everything(server)
    # The last request's access log line says everything before it was written.
    assert wait_until(lambda: "FORGED-query-PS-" in server.log().replace("\\", ""))
    log = server.log_path.read_bytes().decode("utf-8", "surrogateescape")
    total = sum(len(injection.names) for injection in sent)
    raw = reached_raw(log, sent)
    assert raw == [], f"{len(raw)} of {total} injected values reached the {log_format} log raw"
    assert forged_lines(log) == []
    assert [line for line in log.split("\n") if not line.isprintable()] == []
    assert missing_escapes(readable(log, log_format), sent) == []


def test_gunicorns_own_log_lines_show_client_headers_escaped(
    migrated_template: Path, tmp_path: Path
) -> None:
    """gunicorn's access log writes Referer and User-Agent, on handlers of its own."""
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(tmp_path),
        GUARDSITE_ACCESS_LOG="-",
        DJANGO_SETTINGS_MODULE="guardsite.settings",
    )
    log = tmp_path / "gunicorn.log"
    process = start_gunicorn(env, log)
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(database, log)
    server.ports = [port]
    # gunicorn refuses a folded header (and CR or LF in any) with HTTP 400.
    headers = {
        "Referer": header_payload("referer", fold=False),
        "User-Agent": header_payload("useragent", fold=False),
    }
    raw = raw_names(fold=False)
    sent = [Injection(field, raw, logged=True, latin1=True) for field in ("referer", "useragent")]
    try:
        wait_for_gunicorn(url, process, log)
        exchange(server, request(b"/healthz", headers))
        assert wait_until(lambda: "FORGED-useragent-PS-" in log.read_text(errors="replace"))
    finally:
        process.terminate()
        process.wait(15)
    text = log.read_bytes().decode("utf-8", "surrogateescape")
    assert reached_raw(text, sent) == []
    assert forged_lines(text) == []
    assert missing_escapes(text, sent) == []


def test_the_access_log_names_the_peer_not_what_it_forwards(
    start_server: Callable[..., LiveServer],
) -> None:
    """eventlet wrote any peer's X-Forwarded-For as the client: a direct client chose its own."""
    server = start_server(ALLOWED, options=("--access-log",))
    headers = {"X-Forwarded-For": "203.0.113.77"}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(urllib.request.Request(server.url + "/?peer-check", headers=headers)).close()
    assert wait_until(lambda: "peer-check" in server.log())
    line = next(line for line in server.log().splitlines() if "peer-check" in line)
    assert "203.0.113.77" not in line
    assert "127.0.0.1" in line
