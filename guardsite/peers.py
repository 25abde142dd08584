"""At most so many open connections per peer address, so one address cannot hold the pool.

runsocket serves every connection from one pool of green threads; a client
that opens connections and never finishes a request holds a slot each. The
cap counts TCP peers (an IPv6 /64 as one, as the handshake limit does); a
trusted proxy (``WHITELIST_TRUSTED_PROXIES``) speaks for many clients and is
not counted: the proxy caps its clients itself (nginx ``limit_conn``).
"""

from __future__ import annotations

from collections.abc import Callable

from whitelist.core.ratelimit import address_key

# What enter() answers for a peer that is not counted at all.
EXEMPT = ""


class PeerCounter:
    """Open connections by peer; only touched from the serving green threads.

    Green threads switch only on I/O, so the count needs no lock; the dict
    holds only peers with a connection open, so its size is bounded by them.
    """

    def __init__(self, limit: int, is_exempt: Callable[[str], bool] = lambda _: False) -> None:
        self.limit = limit
        self._is_exempt = is_exempt
        self._open: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._open)

    def enter(self, address: str) -> str | None:
        """Count a new connection from ``address``: its key, or None when over the cap.

        Pass the key to ``leave()`` as the connection closes (``EXEMPT`` too).
        """
        if self._is_exempt(address):
            return EXEMPT
        key = address_key(address) or "unknown"  # never EXEMPT, so always released
        count = self._open.get(key, 0)
        if count >= self.limit:
            return None
        self._open[key] = count + 1
        return key

    def leave(self, key: str) -> None:
        if key == EXEMPT:
            return
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)
