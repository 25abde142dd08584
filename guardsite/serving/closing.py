"""Connections a server closes without serving: how long it holds them, what it logs.

Both runsocket servers (eventlet's and gevent's) close the same connections
the same way, in one line each: over the per-address cap, from a flooding
address, with no complete request head in time, or failing the TLS
handshake. A client can provoke each of them at will, so the lines are rate
limited per kind (``RateLimitedLog``) and the client's own words never appear
raw.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from guardsite.peers import PeerCounter
from whitelist.core.ratelimited_log import RateLimitedLog

logger = logging.getLogger("guardsite.serving")
# Lines an attacker provokes: a few a minute per kind, the rest at DEBUG.
limited_log = RateLimitedLog(logger)
# How long a connection from a flooding address is held before it is closed unread:
# a flooder that reconnects at once would otherwise cost an accept and a green
# thread thousands of times a second; held, it waits, and a sleeping green thread
# costs nothing.
FLOOD_HOLD_SECONDS = 1.0

# Why a TLS handshake fails, in the words of a newcomer who has just started the demo.
HANDSHAKE_HINTS = {
    "TLSV1_ALERT_UNKNOWN_CA": "the client does not trust this certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the client does not trust this certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the client rejected this certificate",
    "HTTP_REQUEST": "plain HTTP sent to an HTTPS address",
    "WRONG_VERSION_NUMBER": "not TLS, or a TLS version below 1.2",
    "UNSUPPORTED_PROTOCOL": "a TLS version below 1.2",
}


@dataclass(frozen=True)
class ConnectionPolicy:
    """What both servers hold a connection to: the pool, the per-address cap (a trusted
    proxy is not capped), flooding addresses, the head deadline and the socket timeout."""

    max_connections: int
    socket_timeout: float | None = None
    head_timeout: float | None = None
    max_per_address: int | None = None
    is_flooding: Callable[[str], bool] | None = None
    is_trusted_proxy: Callable[[str], bool] = lambda _: False

    def peer_counter(self) -> PeerCounter | None:
        """A server's count of open connections per peer, or None without a cap."""
        if not self.max_per_address:
            return None
        return PeerCounter(self.max_per_address, self.is_trusted_proxy)


def log_over_cap(peer: str, limit: int) -> None:
    limited_log.log(
        "connections over the per-address cap",
        logging.WARNING,
        "Closed a connection unread: over %d connections from %s",
        limit,
        peer,
    )


def log_slow_head(peer: str, seconds: float | None) -> None:
    limited_log.log(
        "slow request heads",
        logging.INFO,
        "Closed a connection from %s: no complete request head within %s s",
        peer,
        seconds,
    )


def log_tls_failure(peer: str, error: ssl.SSLError, *, handshake: bool) -> None:
    """One line for a failed TLS handshake (or a later TLS error on the connection).

    A client's distrust of the certificate is routine (INFO); any other TLS
    reason, the operator should see (WARNING).
    """
    reason = error.reason or type(error).__name__
    hint = HANDSHAKE_HINTS.get(reason)
    what = "TLS handshake" if handshake else "TLS error on a connection"
    shown = f"{reason} ({hint})" if hint else reason
    logger.log(
        logging.INFO if hint else logging.WARNING, "%s from %s failed: %s", what, peer, shown
    )
