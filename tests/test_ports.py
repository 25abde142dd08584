"""The test runs' port allocator (harness.live.free_port): no port handed out twice."""

from __future__ import annotations

import fcntl
import os
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


def test_a_port_another_process_claimed_is_not_handed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another worker, or another test run on the machine, holds its lock: the port is its."""
    monkeypatch.setattr(live.random, "randrange", lambda size: 0)  # try the first ports first
    live.PORT_LOCKS.mkdir(exist_ok=True)
    others = []
    try:
        for port in range(live.PORTS_FIRST, live.PORTS_END):  # as another process would
            descriptor = os.open(live.PORT_LOCKS / str(port), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                continue
            others.append((port, descriptor))
            if len(others) == 20:
                break
        taken = {port for port, _ in others}
        assert not taken & {live.free_port() for _ in range(5)}
    finally:
        for _, descriptor in others:
            os.close(descriptor)


def test_a_port_in_use_is_skipped() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert live.free_port() != busy.getsockname()[1]
