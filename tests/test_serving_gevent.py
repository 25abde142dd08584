"""runsocket's hardening and TLS in gevent mode: tests/test_serving.py's and
tests/test_tls.py's live tests, on gevent servers (tests/gevent_mode.py).

The slowloris attack, the per-address cap, the head and keep-alive deadlines,
silent connections, the TLS handshake's lines, wss:// and the certificates.
A file of its own beside test_runsocket_gevent.py: make test gives each file to
one worker.
"""

from __future__ import annotations

from tests import gevent_mode, test_serving, test_tls
from tests.gevent_mode import collect_live_tests

# conftest's fixtures, in gevent mode, for every test below.
start_server = gevent_mode.start_server
socket_server = gevent_mode.socket_server
dev_ca = gevent_mode.dev_ca

collect_live_tests(
    test_serving,
    globals(),
    skip=(
        # eventlet's own check; gevent's is in test_runsocket_gevent.py.
        "test_a_changed_eventlet_protocol_is_a_named_check_error",
        "test_banner_names_the_rules_and_the_addresses",  # test_banner_names_gevent
    ),
)
collect_live_tests(
    test_tls,
    globals(),
    skip=("test_gunicorn_serves_wss_with_the_eventlet_worker",),  # gunicorn's, not runsocket's
)
