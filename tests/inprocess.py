"""Serve a WSGI app in this process, on a free loopback port, in either async mode.

* ``threading``: Werkzeug's threaded server, which gives simple-websocket the
  raw socket, as gunicorn's gthread worker does.
* ``eventlet``: ``eventlet.wsgi`` in an OS thread of its own, whose hub runs the
  server's green threads. The test process is not monkey-patched: only the
  server's own code runs on that hub, and the clients use ordinary threads.
* ``gevent``: ``gevent.pywsgi`` the same way, on a gevent hub of that thread's
  own; python-engineio serves its WebSockets with simple-websocket on gevent's
  greenlets, events and selectors, as under gunicorn's gevent worker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# make test's run on the lowest releases names its own (GUARDSITE_TEST_MODES=eventlet): the
# design's default, and the run shares the two cores with the suite.
MODES = os.environ.get("GUARDSITE_TEST_MODES", "threading,eventlet,gevent").split(",")
START_TIMEOUT = 15


@contextmanager
def serving(
    app: Callable[..., Any], mode: str, before_stop: Callable[[], object] = lambda: None
) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL.

    ``before_stop`` (a Socket.IO server's ``shutdown``) runs in the server's own
    thread, where an eventlet server's green threads live.
    """
    serve = SERVERS[mode]
    ready: list[int] = []
    started = threading.Event()
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(app, ready, started, stop, before_stop),
        name=f"{mode}-server",
        daemon=True,
    )
    thread.start()
    if not started.wait(START_TIMEOUT) or not ready:
        raise RuntimeError(f"the {mode} server did not start")
    try:
        yield f"http://127.0.0.1:{ready[0]}"
    finally:
        stop.set()
        thread.join(START_TIMEOUT)


def _serve_threading(
    app: Callable[..., Any],
    ready: list[int],
    started: threading.Event,
    stop: threading.Event,
    before_stop: Callable[[], object],
) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    ready.append(server.server_port)
    started.set()
    watcher = threading.Thread(
        target=lambda: (stop.wait(), before_stop(), server.shutdown()), daemon=True
    )
    watcher.start()
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()


def _serve_eventlet(
    app: Callable[..., Any],
    ready: list[int],
    started: threading.Event,
    stop: threading.Event,
    before_stop: Callable[[], object],
) -> None:
    import eventlet
    import eventlet.wsgi

    listener = eventlet.listen(("127.0.0.1", 0))
    ready.append(listener.getsockname()[1])
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    started.set()
    while not stop.is_set():
        eventlet.sleep(0.05)
    before_stop()
    server.kill()
    listener.close()


def _serve_gevent(
    app: Callable[..., Any],
    ready: list[int],
    started: threading.Event,
    stop: threading.Event,
    before_stop: Callable[[], object],
) -> None:
    """gevent's WSGI server on a hub of this thread's own (gevent has one hub per thread)."""
    import gevent
    from gevent.pywsgi import WSGIServer

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    ready.append(server.server_port)
    started.set()
    while not stop.is_set():
        gevent.sleep(0.05)
    before_stop()
    server.stop(timeout=1)


SERVERS = {"threading": _serve_threading, "eventlet": _serve_eventlet, "gevent": _serve_gevent}
