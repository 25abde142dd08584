"""Request-head deadlines under eventlet: the overdue head's green thread is ended, no other."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet's deprecation notice
    import eventlet

from guardsite.serving.head_deadlines import HeadDeadlines, SlowHead

# Long beside the reads that complete (0.05 s, or 0.6 of it), so that a stall of the test
# process under load (a few hundred ms) cannot push a complete head past its deadline.
SECONDS = 1.0


def reading(deadlines: HeadDeadlines, key: str, reads_for: float) -> str:
    """A connection reading a request head for ``reads_for`` seconds: was it ended?"""
    deadlines.start(key)
    try:
        eventlet.sleep(reads_for)
    except SlowHead:
        return "ended"
    deadlines.stop(key)
    return "complete"


def outcomes(*threads: eventlet.greenthread.GreenThread) -> list[str]:
    with eventlet.Timeout(10):  # a bound, not a measurement
        return [thread.wait() for thread in threads]


def test_only_the_overdue_heads_are_ended() -> None:
    deadlines = HeadDeadlines(SECONDS)
    slow = eventlet.spawn(reading, deadlines, "slow", 5)
    quick = eventlet.spawn(reading, deadlines, "quick", 0.05)
    later = eventlet.spawn_after(0.1, reading, deadlines, "later", 5)
    assert outcomes(slow, quick, later) == ["ended", "complete", "ended"]
    assert len(deadlines) == 0


def test_a_connections_next_head_gets_a_whole_deadline_of_its_own() -> None:
    """Keep-alive: the second head of a connection is due after the heads begun before it."""
    deadlines = HeadDeadlines(SECONDS)

    def two_heads() -> str:
        deadlines.start("kept")
        eventlet.sleep(SECONDS * 0.6)
        deadlines.stop("kept")
        return reading(deadlines, "kept", SECONDS * 0.6)  # within its own deadline

    other = eventlet.spawn_after(SECONDS * 0.3, reading, deadlines, "other", 5)
    kept = eventlet.spawn(two_heads)
    assert outcomes(kept, other) == ["complete", "ended"]


def test_a_thread_gone_before_its_deadline_is_left_alone() -> None:
    deadlines = HeadDeadlines(SECONDS)
    deadlines.start("gone")  # this test's own thread: it must not be thrown into
    done = eventlet.spawn(lambda: None)
    done.wait()
    deadlines._heads["gone"] = (deadlines._heads["gone"][0], done)  # a dead green thread
    eventlet.sleep(SECONDS * 2)
    assert len(deadlines) == 0


@pytest.mark.parametrize("count", [1, 50])
def test_heads_started_together_all_end(count: int) -> None:
    deadlines = HeadDeadlines(SECONDS)
    threads = [eventlet.spawn(reading, deadlines, str(number), 5) for number in range(count)]
    assert outcomes(*threads) == ["ended"] * count


def test_a_thread_failing_as_it_ends_leaves_the_other_overdue_heads_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The thrown thread runs in the hub until it blocks: its error used to stop the rest."""
    deadlines = HeadDeadlines(SECONDS)

    def failing() -> str:
        deadlines.start("failing")
        try:
            eventlet.sleep(5)
        except SlowHead:
            raise RuntimeError("the connection's teardown failed") from None
        return "complete"

    threads = [
        eventlet.spawn(failing),
        eventlet.spawn(reading, deadlines, "second", 5),
        eventlet.spawn(reading, deadlines, "third", 5),
    ]
    with eventlet.Timeout(10):
        with pytest.raises(RuntimeError):
            threads[0].wait()
        assert [thread.wait() for thread in threads[1:]] == ["ended", "ended"]
    assert len(deadlines) == 0
    assert "failed while ending its overdue head" in caplog.text
