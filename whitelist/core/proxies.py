"""Who the client is: the TCP peer, or what trusted proxies say in ``X-Forwarded-For``.

Anyone can send ``X-Forwarded-For``. It means something only when the peer
that sent it is a proxy of ours: so the header is read only when the TCP peer
(``REMOTE_ADDR``) is in the trusted networks, and then walked from the right,
one entry per hop, while the hop that wrote the entry is trusted too, for at
most ``count`` hops. A client that reaches the server directly is its own
address, whatever it writes in the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from whitelist.core.display import escaped

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# What a stored address may cost: a client's garbage is cut to this length.
MAX_ADDRESS_LENGTH = 64


def parse_network(entry: object) -> Network:
    """``"10.0.0.0/8"``, ``"127.0.0.1"`` or ``"::1"`` as a network; ValueError otherwise.

    An IPv4-mapped network (``::ffff:10.0.0.0/104``) is its IPv4 network, as
    peers' IPv4-mapped addresses are compared as IPv4.
    """
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not a string")
    network = ipaddress.ip_network(entry.strip(), strict=False)
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:  # peers are compared as IPv4
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


class TrustedProxies:
    """The networks whose peers may speak for a client in ``X-Forwarded-For``."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(network) for network in self.networks]})"

    def __contains__(self, address: object) -> bool:
        if not self.networks:  # the usual case: no proxy, nothing to parse
            return False
        parsed = _ip(address)
        return parsed is not None and any(parsed in network for network in self.networks)


def client_address(environ: Mapping[str, Any], trusted: TrustedProxies, count: int) -> str:
    """The client's address (at most 64 characters), without a port.

    ``REMOTE_ADDR``, unless it is a trusted proxy: then the rightmost
    ``X-Forwarded-For`` entry (what that proxy saw), and so on leftwards while
    the address reached is trusted too, for at most ``count`` entries.
    Entries further left are the client's own writing and never read.
    Escaped (``whitelist.core.display.escaped``): a proxy passes on what its
    client wrote, and the address is logged and stored.
    """
    address = environ.get("REMOTE_ADDR") or "unknown"
    if count > 0 and trusted and address in trusted:
        header = environ.get("HTTP_X_FORWARDED_FOR", "")
        forwarded = [entry for entry in (a.strip() for a in header.split(",")) if entry]
        for _ in range(min(count, len(forwarded))):
            if address not in trusted:
                break
            address = _without_port(forwarded.pop())
    return escaped(_without_port(address))[:MAX_ADDRESS_LENGTH]


def _ip(address: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as the networks compare it (an IPv4-mapped IPv6 address as IPv4)."""
    if not isinstance(address, str):
        return None
    try:
        parsed = ipaddress.ip_address(_without_port(address))
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _without_port(address: str) -> str:
    """``203.0.113.9:4711`` or ``[2001:db8::1]:4711`` (as some proxies write them), bare."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address
