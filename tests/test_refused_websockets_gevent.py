"""tests/test_refused_websockets.py's live tests, on runsocket in gevent mode."""

from __future__ import annotations

from tests import test_refused_websockets
from tests.gevent_mode import collect_live_tests, socket_server, start_server  # noqa: F401

collect_live_tests(test_refused_websockets, globals())
