"""tests/test_fuzz.py's fuzz run against a gevent runsocket, in its own file: make test
gives each file to one worker, and the run takes about a minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import gevent_mode, test_fuzz
from tests.test_fuzz import test_fuzzed_requests_and_packets_leave_the_server_serving_and_clean

start_server = gevent_mode.start_server  # conftest's fixture, in gevent mode
__all__ = ["test_fuzzed_requests_and_packets_leave_the_server_serving_and_clean"]


@pytest.fixture(autouse=True)
def fewer_inputs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Half the eventlet run's inputs: the same seed and parser, a different server, and
    make test's two cores shared with the eventlet run."""
    monkeypatch.setattr(test_fuzz, "COUNT", test_fuzz.COUNT // 2)
    yield
