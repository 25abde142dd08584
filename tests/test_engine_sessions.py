"""Session deadlines in-process (whitelist.engine.sessions), on a made-up clock.

The live tests in tests/sessions/ prove the same end to end; these fail
in make check's seconds when the bookkeeping breaks.
"""

from __future__ import annotations

import pytest
import socketio
from django.test import override_settings

from whitelist.engine import sessions
from whitelist.engine.sessions import Deadlines, EngineSessions


class Clock:
    """time.monotonic for the module under test, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sessions.time, "monotonic", clock)
    return clock


@pytest.fixture
def engine_sessions() -> EngineSessions:
    """The bookkeeping of a real python-engineio server, with no session of its own."""
    return EngineSessions(socketio.Server(async_mode="threading").eio)


def test_deadlines_come_out_in_deadline_order_whatever_the_order_set() -> None:
    deadlines = Deadlines()
    for sid, when in [("c", 3.0), ("a", 1.0), ("b", 2.0)]:
        deadlines.set(sid, when)
    assert deadlines.expired(2.5) == ["a", "b"]
    assert deadlines.expired(10) == ["c"]
    assert len(deadlines) == 0


def test_a_deadline_moved_again_and_again_holds_up_no_other() -> None:
    """The sweep read deadlines in insertion order, and one moved in place held up the rest."""
    deadlines = Deadlines()
    deadlines.set("stubborn", 1.0)
    for number in range(50):
        deadlines.set(f"other{number}", 2.0)
    for later in range(3, 100):
        deadlines.set("stubborn", float(later))  # moved on each repeat
    assert deadlines.expired(2.5) == [f"other{number}" for number in range(50)]
    assert "stubborn" in deadlines


def test_a_moved_deadline_counts_only_where_it_is_now() -> None:
    deadlines = Deadlines()
    deadlines.set("a", 5.0)
    deadlines.set("a", 1.0)
    assert deadlines.expired(2.0) == ["a"]
    assert deadlines.expired(10.0) == []  # its old entry is skipped
    deadlines.set("b", 1.0)
    assert deadlines.pop("b") == 1.0
    assert deadlines.expired(10.0) == []


@override_settings(WHITELIST_CONNECT_TIMEOUT=10)
def test_a_session_that_connects_nothing_expires_on_time(
    clock: Clock, engine_sessions: EngineSessions
) -> None:
    engine_sessions.opened("s", "https://a.test", allowed=True)
    clock.now += 9.9
    assert engine_sessions.sweep() == 0
    clock.now += 0.2
    assert engine_sessions.sweep() == 1
    assert engine_sessions.pending_deadlines() == 0


@override_settings(WHITELIST_CONNECT_TIMEOUT=10)
def test_a_refused_origin_gets_less_time(clock: Clock, engine_sessions: EngineSessions) -> None:
    engine_sessions.opened("s", "https://evil.test", allowed=False)
    clock.now += sessions.REFUSED_CONNECT_SECONDS + 0.1
    assert engine_sessions.sweep() == 1


@override_settings(WHITELIST_CONNECT_TIMEOUT=10)
def test_connects_that_welcome_nothing_never_buy_more_time(
    clock: Clock, engine_sessions: EngineSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CONNECT to a namespace that does not exist restarted the 10 s clock each time."""
    monkeypatch.setattr(sessions.sockets, "engineio_socket", lambda eio, sid: object())
    engine_sessions.opened("s", "https://a.test", allowed=True)
    for _ in range(9):
        clock.now += 1.0
        engine_sessions.connecting("s")
        clock.now += 0.5  # the connect is being handled: the clock stops
        engine_sessions.connect_handled("s")
    clock.now += 1.0  # 10 s of clock in all, 4.5 s of handling beside
    assert engine_sessions.sweep() == 1


def test_a_repeated_refusal_never_extends_the_first_ones_grace(
    clock: Clock, engine_sessions: EngineSessions
) -> None:
    engine_sessions.opened("s", "https://evil.test", allowed=False)
    engine_sessions.refused("s")
    clock.now += sessions.REFUSAL_GRACE_SECONDS * 0.9
    engine_sessions.refused("s")
    clock.now += sessions.REFUSAL_GRACE_SECONDS * 0.2
    assert engine_sessions.sweep() == 1


def test_a_welcomed_session_has_no_deadline(clock: Clock, engine_sessions: EngineSessions) -> None:
    engine_sessions.opened("s", "https://a.test", allowed=True)
    engine_sessions.joined("s")
    clock.now += 3600
    assert engine_sessions.sweep() == 0
    assert engine_sessions.has_joined("s")
    assert engine_sessions.ended("s") is not None
    assert engine_sessions.get("s") is None
