"""guardsite.peers: open connections per peer address, trusted proxies not counted."""

from __future__ import annotations

from guardsite.peers import EXEMPT, PeerCounter


def test_an_address_may_open_up_to_the_cap_and_again_after_one_closes() -> None:
    peers = PeerCounter(2)
    keys = [peers.enter("192.0.2.1") for _ in range(3)]
    assert keys == ["192.0.2.1", "192.0.2.1", None]
    assert peers.enter("192.0.2.2") == "192.0.2.2"  # another address: its own count
    peers.leave("192.0.2.1")
    assert peers.enter("192.0.2.1") == "192.0.2.1"


def test_an_ipv6_64_counts_as_one_address() -> None:
    peers = PeerCounter(1)
    assert peers.enter("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert peers.enter("2001:db8:1:2:ffff::9") is None
    assert peers.enter("::ffff:192.0.2.1") == "192.0.2.1"


def test_an_exempt_peer_is_never_counted() -> None:
    peers = PeerCounter(1, is_exempt=lambda address: address == "127.0.0.3")
    assert [peers.enter("127.0.0.3") for _ in range(5)] == [EXEMPT] * 5
    assert len(peers) == 0
    peers.leave(EXEMPT)
    assert len(peers) == 0


def test_memory_holds_only_addresses_with_a_connection_open() -> None:
    peers = PeerCounter(5)
    keys = [peers.enter(f"10.0.{n // 256}.{n % 256}") for n in range(1000)]
    assert len(peers) == 1000
    for key in keys:
        assert key is not None
        peers.leave(key)
    assert len(peers) == 0


def test_a_peer_without_an_address_is_released_like_any_other() -> None:
    """Its key was the exempt marker: counted on entry, never released, then refused for good."""
    peers = PeerCounter(2)
    for _ in range(3):
        keys = [peers.enter(""), peers.enter("")]
        assert None not in keys
        for key in keys:
            peers.leave(key)  # type: ignore[arg-type]
    assert len(peers) == 0
