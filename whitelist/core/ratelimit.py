"""A per-address limit on connection attempts: one token bucket per client, in bounded memory.

Every Engine.IO handshake (a request to the Socket.IO path without a session
id) takes a token from its address's bucket; a bucket holds at most ``burst``
tokens and refills at ``rate`` per second. An address with no token left is
answered HTTP 429 before any decision or session. Buckets of the addresses seen
least recently are dropped beyond ``max_addresses``, so a flood from many
addresses costs bounded memory (a dropped address starts again with a full
bucket). An IPv6 client is counted by its /64 network, which one host
usually holds whole.

An address refused more than ``flooding_refusals`` times in about a second (a
count that decays with a time constant of a second; four times the rate, at
least 20: far above what a reconnect storm behind one NAT address sends once
its burst is spent) is flooding: the server
may then drop its connections as they are accepted (``is_flooding``), before
reading a request: all of them, pages and open sessions' requests too, until
the count decays (about a second after the flood stops). Answering each
attempt with a 429 cost as much CPU as a welcome: a flood from one address
halved the connect rate of everyone else.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from whitelist.core.proxies import TrustedProxies, client_address

MAX_ADDRESSES = 10_000
MIN_FLOODING_REFUSALS = 20
FLOODING_FACTOR = 4
PRESSURE_SECONDS = 1.0


class AttemptLimiter:
    """Token buckets by client address."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
        lock: Any = None,
    ) -> None:
        """``lock`` guards the buckets (a ``threading.Lock`` by default): its sections only
        count, so a green server may give the interpreter's own, which costs no Python calls."""
        self.rate = rate
        self.burst = burst
        self.max_addresses = max_addresses
        self.flooding_refusals = max(MIN_FLOODING_REFUSALS, FLOODING_FACTOR * rate)
        self._clock = clock
        self._lock = threading.Lock() if lock is None else lock
        # address -> (tokens left, when they were counted, recent refusals, decaying);
        # least recently seen first
        self._buckets: OrderedDict[str, tuple[float, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str) -> float:
        """Take a token for ``address``: 0 when it may go on, else seconds until it may retry."""
        now = self._clock()
        with self._lock:
            tokens, counted, pressure = self._buckets.pop(address, (self.burst, now, 0.0))
            tokens = min(self.burst, tokens + (now - counted) * self.rate)
            pressure = _decayed(pressure, now - counted)
            if tokens >= 1:
                self._buckets[address] = (tokens - 1, now, pressure)
                wait = 0.0
            else:
                self._buckets[address] = (tokens, now, pressure + 1)
                wait = (1 - tokens) / self.rate
            if len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        return wait

    def is_flooding(self, address: str) -> bool:
        """Has ``address`` been refused more than ``flooding_refusals`` times of late?"""
        with self._lock:
            bucket = self._buckets.get(address)
        if bucket is None:
            return False
        _, counted, pressure = bucket
        return _decayed(pressure, self._clock() - counted) >= self.flooding_refusals


def _decayed(pressure: float, seconds: float) -> float:
    return pressure * math.exp(-seconds / PRESSURE_SECONDS) if pressure else 0.0


def client_key(environ: Mapping[str, Any], trusted: TrustedProxies, count: int) -> str:
    """The address a request came from, as the limiter counts it (``address_key``).

    ``X-Forwarded-For`` counts only from trusted proxies (``whitelist.core.proxies``).
    """
    return address_key(client_address(environ, trusted, count))


@functools.lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """One bucket per client: an IPv6 address stands for its /64, which one host holds.

    Cached: a client sends many requests, and parsing an address costs some fifteen
    Python calls each time.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address: still one bucket, of bounded size
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


def retry_after(seconds: float) -> str:
    """An HTTP ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
