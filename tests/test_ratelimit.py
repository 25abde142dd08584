"""whitelist.core.ratelimit: token buckets by client address, in bounded memory."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from harness.live import LiveServer
from tests.clients import welcomed
from whitelist.core.proxies import TrustedProxies, parse_network
from whitelist.core.ratelimit import MIN_FLOODING_REFUSALS, AttemptLimiter, client_key, retry_after

PROXIES = TrustedProxies([parse_network("10.0.0.0/8")])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_may_use_its_burst_then_waits_for_the_rate() -> None:
    clock = Clock()
    limiter = AttemptLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("192.0.2.1") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("192.0.2.1") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("192.0.2.1") == 0
    assert limiter.take("192.0.2.1") > 0


def test_refused_attempts_do_not_dig_the_hole_deeper() -> None:
    clock = Clock()
    limiter = AttemptLimiter(rate=1, burst=1, clock=clock)
    limiter.take("a")
    for _ in range(100):
        limiter.take("a")
    clock.now += 1
    assert limiter.take("a") == 0


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = AttemptLimiter(rate=10, burst=2, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") == 0 for _ in range(3)] == [True, True, False]


def test_an_address_refused_again_and_again_is_flooding_for_a_while() -> None:
    clock = Clock()
    limiter = AttemptLimiter(rate=1, burst=1, clock=clock)
    limiter.take("a")
    for _ in range(MIN_FLOODING_REFUSALS - 1):
        limiter.take("a")
    assert not limiter.is_flooding("a")
    limiter.take("a")
    assert limiter.is_flooding("a")
    assert not limiter.is_flooding("b")
    clock.now += 0.01
    assert limiter.take("a") > 0 and limiter.is_flooding("a")  # a token now and then: still
    clock.now += 5
    assert not limiter.is_flooding("a")  # quiet for a while: it gets its turn again
    assert limiter.take("a") == 0


def test_the_flooding_threshold_grows_with_the_rate() -> None:
    assert AttemptLimiter(rate=1, burst=5).flooding_refusals == MIN_FLOODING_REFUSALS
    assert AttemptLimiter(rate=50, burst=200).flooding_refusals == 200


def test_memory_is_bounded_by_dropping_the_least_recently_seen() -> None:
    clock = Clock()
    limiter = AttemptLimiter(rate=1, burst=1, max_addresses=100, clock=clock)
    limiter.take("kept")
    for n in range(1000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
        if n % 50 == 0:
            limiter.take("kept")  # seen recently: stays
    assert len(limiter) == 100
    assert limiter.take("kept") > 0


@pytest.mark.parametrize(
    ("environ", "proxies", "key"),
    [
        ({"REMOTE_ADDR": "192.0.2.1"}, 0, "192.0.2.1"),
        ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9"}, 0, "192.0.2.1"),
        ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9"}, 1, "198.51.100.9"),
        # What the client wrote itself, left of the proxy's entry, is ignored.
        (
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.9"},
            1,
            "198.51.100.9",
        ),
        (
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.9, 10.0.0.2"},
            2,
            "198.51.100.9",
        ),
        # A hop that is not a trusted proxy ends the walk: the client is what it reported.
        (
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.5"},
            2,
            "203.0.113.5",
        ),
        # A peer that is not a trusted proxy is the client, whatever it writes.
        ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9"}, 1, "192.0.2.1"),
        ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "10.0.0.9"}, 1, "192.0.2.1"),
        # Fewer entries than proxies: the request did not come through them.
        ({"REMOTE_ADDR": "192.0.2.1"}, 1, "192.0.2.1"),
        ({"REMOTE_ADDR": "10.0.0.1"}, 1, "10.0.0.1"),
        (
            {"REMOTE_ADDR": "::ffff:10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9"},
            1,
            "198.51.100.9",
        ),
        ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, 0, "2001:db8:1:2::/64"),
        ({"REMOTE_ADDR": "2001:db8:1:2:ffff::1"}, 0, "2001:db8:1:2::/64"),
        ({"REMOTE_ADDR": "::ffff:192.0.2.1"}, 0, "192.0.2.1"),
        ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "x" * 500}, 1, "x" * 64),
        # The client writes its entry: logged and stored, it must not start a line.
        (
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "\x1b[2J\x85forged, 10.0.0.2"},
            2,
            "\\x1b[2J\\x85forged",
        ),
        ({}, 0, "unknown"),
        (
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9:4711"},
            1,
            "198.51.100.9",
        ),
        (
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "[2001:db8::1]:4711"},
            1,
            "2001:db8::/64",
        ),
    ],
)
def test_client_key_behind_proxies_in_10_0_0_0_8(
    environ: dict[str, str], proxies: int, key: str
) -> None:
    assert client_key(environ, PROXIES, proxies) == key


def test_no_trusted_proxy_means_no_forwarded_header_is_read() -> None:
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9"}
    assert client_key(environ, TrustedProxies(), 1) == "10.0.0.1"


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_is_whole_seconds(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


def handshake_from(server: LiveServer, source: str, forwarded_for: str | None = None) -> int:
    """One polling handshake from the loopback address ``source``; the HTTP status."""
    forwarded = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    request = (
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
        f"Host: localhost\r\nOrigin: http://evil.example\r\n{forwarded}"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(
        ("127.0.0.1", server.ports[0]), timeout=10, source_address=(source, 0)
    ) as connection:
        try:
            connection.sendall(request.encode())
            head = connection.recv(64)
        except ConnectionError:
            return 0
        return int(head.split()[1]) if head else 0  # 0: closed without an answer


def test_a_flooding_address_is_limited_while_others_are_welcomed(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(
        "http://allowed.test", WHITELIST_CONNECT_RATE="1", WHITELIST_CONNECT_BURST="5"
    )
    # The refusal count decays within about a second, so how many attempts it takes to
    # reach it depends on how fast they come: flood until the first dropped connection.
    statuses: list[int] = []
    while 0 not in statuses and len(statuses) < 300:
        statuses.append(handshake_from(server, "127.0.0.2"))
    assert statuses[:5] == [200] * 5
    # Polite refusals first; then, still flooding, its connections are dropped unread.
    assert statuses[-1] == 0, statuses
    assert statuses.count(429) >= MIN_FLOODING_REFUSALS, statuses
    assert welcomed(server.url, "http://allowed.test")  # from 127.0.0.1: its own bucket
    assert "Refused a handshake from 127.0.0.2: over 1.0 attempts a second" in server.log()


# A proxy-count deployment reached directly: 127.0.0.3 is the proxy, the rest are clients.
PROXY = "127.0.0.3"
BURST = 5


@pytest.fixture(scope="module")
def behind_a_proxy(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(
        WHITELIST_PROXY_COUNT="1",
        WHITELIST_TRUSTED_PROXIES=PROXY,
        WHITELIST_CONNECT_RATE="0.1",
        WHITELIST_CONNECT_BURST=str(BURST),
    )


def test_a_direct_client_rotating_x_forwarded_for_is_limited_by_its_own_address(
    behind_a_proxy: LiveServer,
) -> None:
    """Each made-up X-Forwarded-For was a new bucket: every handshake passed."""
    statuses = [
        handshake_from(behind_a_proxy, "127.0.0.2", f"198.51.100.{n}") for n in range(1, 31)
    ]
    passed = statuses.count(200)
    assert passed == BURST, f"{passed} of {len(statuses)} handshakes passed: {statuses}"


def test_a_direct_client_cannot_spend_a_victims_handshakes(behind_a_proxy: LiveServer) -> None:
    """Spoofing the victim's address in X-Forwarded-For got the victim HTTP 429."""
    victim = "127.0.0.4"
    spoofed = [handshake_from(behind_a_proxy, "127.0.0.5", victim) for _ in range(2 * BURST)]
    assert spoofed.count(200) == BURST, spoofed  # its own bucket, not the victim's
    answers = [handshake_from(behind_a_proxy, victim) for _ in range(3)]
    assert answers.count(429) == 0, f"the victim got {answers.count(429)} of 3 refused: {answers}"


def test_a_trusted_proxys_x_forwarded_for_names_the_client(behind_a_proxy: LiveServer) -> None:
    rotating = [handshake_from(behind_a_proxy, PROXY, f"203.0.113.{n}") for n in range(1, 11)]
    assert rotating == [200] * 10  # each client its own bucket, not the proxy's
    one_client = [handshake_from(behind_a_proxy, PROXY, "192.0.2.99") for _ in range(BURST + 1)]
    assert one_client == [200] * BURST + [429]
    # What a client wrote left of the proxy's entry is not read either.
    assert handshake_from(behind_a_proxy, PROXY, "203.0.113.200, 192.0.2.99") == 429
