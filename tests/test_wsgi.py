"""OriginGate in this process: CORS from the allowlist, JSONP and 403 refusals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.test import override_settings
from werkzeug.test import Client

from whitelist.gate import origin_gate
from whitelist.gate.origin_gate import HEAD_BYTES, MAX_HEADER_BYTES, OriginGate, header_bytes
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import allowlist

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED = "https://shop.example.com"
REFUSED = "https://evil.example.net"
POLLING = "/socket.io/?EIO=4&transport=polling"
# A browser's WebSocket upgrade (RFC 6455's example key).
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


class Recorder:
    """The app behind the gate: answers 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.paths.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inner"]


@pytest.fixture
def inner() -> Recorder:
    AllowedOrigin.objects.create(pattern=ALLOWED)
    allowlist.invalidate()
    return Recorder()


@pytest.fixture
def client(inner: Recorder) -> Client:
    return Client(OriginGate(inner))


def test_other_paths_pass_through_untouched(client: Client, inner: Recorder) -> None:
    response = client.get("/admin/", headers={"Origin": REFUSED})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert inner.paths == ["/admin/"]


def test_allowed_origin_gets_credentialed_cors(client: Client) -> None:
    response = client.get(POLLING, headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Vary"] == "Origin"


def test_refused_origin_can_read_but_never_with_credentials(client: Client) -> None:
    response = client.get(POLLING, headers={"Origin": REFUSED})
    assert response.status_code == 200  # the namespace connect refuses politely
    assert response.headers["Access-Control-Allow-Origin"] == REFUSED
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_malformed_origin_is_never_echoed(client: Client) -> None:
    response = client.get(POLLING, headers={"Origin": "https://a.test, https://b.test"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_is_answered_by_the_gate(client: Client, inner: Recorder) -> None:
    response = client.options(
        POLLING,
        headers={"Origin": ALLOWED, "Access-Control-Request-Headers": "content-type"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"
    assert inner.paths == []


def test_unprintable_requested_headers_are_not_echoed(client: Client) -> None:
    response = client.options(
        POLLING, headers={"Origin": ALLOWED, "Access-Control-Request-Headers": "x\x7f"}
    )
    assert "Access-Control-Allow-Headers" not in response.headers


@pytest.mark.parametrize("query", ["j=0", "%6A=0", "j="])
def test_jsonp_polling_is_refused(client: Client, inner: Recorder, query: str) -> None:
    response = client.get(f"{POLLING}&{query}", headers={"Origin": ALLOWED})
    assert response.status_code == 400
    assert json.loads(response.data) == {"error": "JSONP is not supported"}
    assert inner.paths == []


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_jsonp_is_refused_with_an_upgrade_header_too(
    client: Client, inner: Recorder, transport: str
) -> None:
    response = client.get(
        f"/socket.io/?EIO=4&transport={transport}&j=0",
        headers={"Origin": REFUSED, **UPGRADE},
    )
    assert response.status_code == 400
    assert json.loads(response.data) == {"error": "JSONP is not supported"}
    assert inner.paths == []


def test_websocket_upgrade_is_left_to_the_namespace_guard(client: Client, inner: Recorder) -> None:
    response = client.get(
        "/socket.io/?EIO=4&transport=websocket",
        headers={"Origin": REFUSED, **UPGRADE},
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert inner.paths == ["/socket.io/"]


@override_settings(WHITELIST_REFUSE_AT_HANDSHAKE=True)
@pytest.mark.parametrize("upgrade", [{}, UPGRADE])
def test_refusal_at_handshake_answers_403_before_any_session(
    client: Client, inner: Recorder, upgrade: dict[str, str]
) -> None:
    response = client.get(POLLING, headers={"Origin": REFUSED, **upgrade})
    assert response.status_code == 403
    assert json.loads(response.data) == {
        "message": "Who invited you to this party?",
        "data": {"reason": "origin-not-allowed", "origin": REFUSED},
    }
    assert inner.paths == []


@override_settings(WHITELIST_REFUSE_AT_HANDSHAKE=True)
def test_refusal_at_handshake_still_admits_allowed_origins(client: Client, inner: Recorder) -> None:
    assert client.get(POLLING, headers={"Origin": ALLOWED}).status_code == 200
    assert inner.paths == ["/socket.io/"]


def test_gate_path_is_configurable(inner: Recorder) -> None:
    client = Client(OriginGate(inner, path="/ws"))
    response = client.get("/ws/?EIO=4&transport=polling&j=0", headers={"Origin": ALLOWED})
    assert response.status_code == 400
    assert client.get(POLLING + "&j=0").status_code == 200  # not the Socket.IO path here


@pytest.mark.parametrize("upgrade", [False, True])
def test_padded_headers_are_refused_before_any_session(
    client: Client, inner: Recorder, upgrade: bool
) -> None:
    """56 KB of padding headers made each refused handshake keep 70 KiB."""
    padding = {f"X-Pad-{n}": "a" * 7000 for n in range(8)}
    headers = {"Origin": ALLOWED, **padding}
    if upgrade:
        headers |= UPGRADE
    response = client.get(POLLING, headers=headers)
    assert response.status_code == 431
    assert inner.paths == []
    usual = client.get(POLLING, headers={"Origin": ALLOWED, "Cookie": "sessionid=" + "x" * 4000})
    assert usual.status_code == 200


def test_a_head_size_the_server_tells_is_the_one_capped() -> None:
    """runsocket tells the size of each head it read (``HEAD_BYTES``): the gate takes it
    as it stands; from any other server it adds up the headers in the environ."""
    padded = {f"HTTP_X_PAD_{n}": "a" * 7000 for n in range(3)}
    assert header_bytes(padded) > MAX_HEADER_BYTES
    assert header_bytes({**padded, HEAD_BYTES: 900}) == 900
    assert header_bytes({"HTTP_ORIGIN": ALLOWED, HEAD_BYTES: MAX_HEADER_BYTES + 1}) == (
        MAX_HEADER_BYTES + 1
    )
    assert header_bytes({**padded, HEAD_BYTES: "900"}) > MAX_HEADER_BYTES  # not the server's


@override_settings(WHITELIST_CONNECT_RATE=1, WHITELIST_CONNECT_BURST=3)
def test_handshakes_beyond_an_addresss_burst_get_429_before_any_session(
    client: Client, inner: Recorder
) -> None:
    answers = [client.get(POLLING, headers={"Origin": ALLOWED}) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert json.loads(answers[-1].data)["data"] == {"reason": "rate-limited"}
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert inner.paths == ["/socket.io/"] * 3


@override_settings(WHITELIST_CONNECT_RATE=1, WHITELIST_CONNECT_BURST=1)
@pytest.mark.parametrize("query", ["&sid=", "&xsid=abc", "&sid"])
def test_a_query_without_a_real_sid_counts_as_a_handshake(client: Client, query: str) -> None:
    assert client.get(POLLING, headers={"Origin": ALLOWED}).status_code == 200
    assert client.get(POLLING + query, headers={"Origin": ALLOWED}).status_code == 429


@override_settings(WHITELIST_CONNECT_RATE=1, WHITELIST_CONNECT_BURST=1)
def test_requests_of_an_open_session_and_other_addresses_are_not_limited(
    client: Client, inner: Recorder
) -> None:
    assert client.get(POLLING, headers={"Origin": ALLOWED}).status_code == 200
    assert client.get(POLLING + "&sid=abc", headers={"Origin": ALLOWED}).status_code == 200
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get(POLLING, headers={"Origin": ALLOWED}, environ_base=other).status_code == 200
    assert client.get("/", environ_base={}).status_code == 200  # Django's pages: never limited


@override_settings(WHITELIST_CONNECT_RATE=None)
def test_no_rate_means_no_limit(client: Client) -> None:
    assert all(client.get(POLLING).status_code == 200 for _ in range(300))


SESSION = "/socket.io/?EIO=4&transport=websocket&sid=abc"


def test_an_upgrade_of_an_open_session_naming_no_origin_is_refused(
    client: Client, inner: Recorder
) -> None:
    """Every browser sends Origin on a WebSocket, and python-socketio's client its headers."""
    response = client.get(SESSION, headers=UPGRADE)
    assert response.status_code == 403
    assert json.loads(response.data)["data"] == {"reason": "missing-origin", "origin": None}
    assert inner.paths == []


@pytest.mark.parametrize(
    "headers", [{"Origin": ALLOWED}, {"Referer": f"{ALLOWED}/chat"}, {"Origin": REFUSED}]
)
def test_an_upgrade_of_an_open_session_naming_an_origin_is_left_to_the_session(
    client: Client, inner: Recorder, headers: dict[str, str]
) -> None:
    upgrade = {**UPGRADE, **headers}
    assert client.get(SESSION, headers=upgrade).status_code == 200
    assert inner.paths == ["/socket.io/"]


@pytest.mark.parametrize("setting", ["WHITELIST_ALLOW_MISSING_ORIGIN", "WHITELIST_REPORT_ONLY"])
def test_an_upgrade_naming_no_origin_passes_where_missing_origins_are_admitted(
    client: Client, inner: Recorder, setting: str
) -> None:
    upgrade = UPGRADE
    with override_settings(**{setting: True}):
        assert client.get(SESSION, headers=upgrade).status_code == 200
    assert inner.paths == ["/socket.io/"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_polling_of_an_open_session_naming_no_origin_is_served_without_cors(
    client: Client, inner: Recorder, method: str
) -> None:
    """python-socketio's client sends its headers on the handshake only (see the README)."""
    response = client.open(POLLING + "&sid=abc", method=method)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert inner.paths == ["/socket.io/"]


@override_settings(WHITELIST_REFUSE_AT_HANDSHAKE=True)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refusal_at_handshake_still_serves_polling_naming_no_origin(
    client: Client, inner: Recorder, method: str
) -> None:
    """python-socketio's client polls without the headers its handshake sent."""
    assert client.open(POLLING + "&sid=abc", method=method).status_code == 200
    assert inner.paths == ["/socket.io/"]


@override_settings(WHITELIST_REFUSE_AT_HANDSHAKE=True)
def test_refusal_at_handshake_refuses_polling_naming_a_refused_origin(
    client: Client, inner: Recorder
) -> None:
    assert client.get(POLLING + "&sid=abc", headers={"Origin": REFUSED}).status_code == 403
    assert inner.paths == []


def test_a_forwarded_for_header_with_no_proxy_count_is_told_once(
    client: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(origin_gate, "_told_of_forwarded_for", False)
    forwarded = {"Origin": ALLOWED, "X-Forwarded-For": "203.0.113.9"}
    client.get(f"{POLLING}&sid=abc", headers=forwarded)  # not a handshake
    client.get(POLLING, headers={"Origin": ALLOWED})
    assert not caplog.records
    with override_settings(WHITELIST_PROXY_COUNT=1):
        client.get(POLLING, headers=forwarded)
    assert not caplog.records
    for _ in range(3):
        client.get(POLLING, headers=forwarded)
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "WHITELIST_PROXY_COUNT is 0" in warnings[0].getMessage()
