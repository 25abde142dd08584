"""tests/test_socketio.py's tests of a guarded server, in gevent mode.

The same test functions, collected from here with a gevent server: make test
gives each file to one worker, and the three modes in one file made it the
suite's longest. Only the tests that take the mode's server run here; the
rest of test_socketio.py names its mode itself.
"""

from __future__ import annotations

import inspect

import pytest

from tests import test_socketio
from tests.test_socketio import guarded_server
from whitelist.server.guarded import GuardedServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(rules: None) -> GuardedServer:
    """A guarded gevent server with test_socketio's two allowed origins."""
    return guarded_server("gevent")


for _name, _value in vars(test_socketio).items():
    if not _name.startswith("test_"):
        globals().setdefault(_name, _value)  # its fixtures (rules, url, ...) and helpers
    elif {"server", "url"} & set(inspect.signature(_value).parameters):
        globals()[_name] = _value
