"""whitelist.core.ratelimit: token buckets by client address, in bounded memory."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from harness.live import LiveServer
from tests.clients import welcomed
from whitelist.core.ratelimit import MIN_FLOODING_REFUSALS, AttemptLimiter, client_key, retry_after


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
        # Fewer entries than proxies: the request did not come through them.
        ({"REMOTE_ADDR": "192.0.2.1"}, 1, "192.0.2.1"),
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
def test_client_key(environ: dict[str, str], proxies: int, key: str) -> None:
    assert client_key(environ, proxies) == key


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_is_whole_seconds(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


def handshake_from(server: LiveServer, source: str) -> int:
    """One polling handshake from the loopback address ``source``; the HTTP status."""
    request = (
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
        "Host: localhost\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n"
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
