"""The test run's port allocator (harness.live.free_port): no port handed out twice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness import live


def test_a_port_is_never_handed_out_twice_even_once_released() -> None:
    """Probing port 0 and closing it let the kernel give the same port to the next caller."""
    ports = [live.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)


def test_ports_come_from_below_the_ephemeral_range() -> None:
    """There, no client socket of the run (the kernel picks those above 32767) can take one."""
    low, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert all(live.PORTS_FIRST <= live.free_port() < min(live.PORTS_END, low) for _ in range(5))


@pytest.mark.parametrize("worker", ["gw0", "gw1", "gw2"])
def test_each_xdist_worker_has_a_block_of_its_own(
    monkeypatch: pytest.MonkeyPatch, worker: str
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    size = (live.PORTS_END - live.PORTS_FIRST) // 3
    first = live.PORTS_FIRST + int(worker[2:]) * size
    assert first <= live.free_port() < first + size


def test_a_port_in_use_is_skipped() -> None:
    taken = live.free_port() + 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", taken))
        assert live.free_port() != taken
