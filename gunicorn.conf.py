"""gunicorn settings for Guardsite: the eventlet or gthread worker, TLS, sized like runsocket.

    gunicorn -c gunicorn.conf.py

Reads the same Django settings as runsocket. Environment: GUARDSITE_BIND
(comma-separated, default 127.0.0.1:8000), GUARDSITE_WORKERS (default 1: each
worker keeps its own Socket.IO sessions, so several need sticky sessions and a
message queue), GUARDSITE_TLS=1 to serve HTTPS/WSS with GUARDSITE_TLS_CERT and
GUARDSITE_TLS_KEY, or with the development certificate when those are unset.

GUARDSITE_WORKER picks the worker:

* ``eventlet`` (the default): green threads, thousands of sockets per worker.
  gunicorn 26 removed this worker, hence gunicorn<26.
* ``gthread``: python-socketio's ``threading`` mode on gunicorn's threaded
  worker, which current gunicorn keeps. Every open socket (a WebSocket, or a
  long-poll waiting for data) holds one of the worker's GUARDSITE_THREADS
  threads (default 100), shared with Django's pages: size it to the sockets
  you expect, or add workers behind sticky sessions.
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path
from typing import Any

from django.conf import settings

from guardsite.tls import ensure_dev_certificate, server_context

# The eventlet worker is the pinned, deliberate choice (gunicorn<26; the README says
# why and names the gthread alternative): its two deprecation notices, eventlet's on
# import (filtered as this imports the app's gunicorn settings) and gunicorn's at each
# worker's start, say nothing an operator can act on.
from whitelist.gunicorn_conf import quiet_worker_logs

# Only the settings are read here, never django.setup(): the master must not
# create Django's thread-locals before each worker's eventlet monkey-patching.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guardsite.settings")
WORKER = os.environ.get("GUARDSITE_WORKER", "eventlet")
# Each worker and python-socketio's async mode that runs on it.
ASYNC_MODES = {"eventlet": "eventlet", "gevent": "gevent", "gthread": "threading"}
if WORKER not in ASYNC_MODES:
    raise ValueError(f"GUARDSITE_WORKER={WORKER!r}: use eventlet, gevent or gthread")
# Read by guardsite.settings, so set before the settings load (the import is lazy).
os.environ["GUARDSITE_SOCKETIO_ASYNC_MODE"] = ASYNC_MODES[WORKER]
if WORKER == "gthread":
    threads = int(os.environ.get("GUARDSITE_THREADS", "100"))
if WORKER == "gevent":
    # gevent's default records, for every greenlet spawned, the stack and greenlet that
    # spawned it: a debugging aid that walked the frames of each socket's writer at
    # every connect, and keeps them for the socket's life. Set it to "true" to debug.
    os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")

wsgi_app = "guardsite.wsgi:application"
worker_class = WORKER
workers = int(os.environ.get("GUARDSITE_WORKERS", "1"))
# A gthread worker serves at most one request per thread; more connections would
# only queue behind the busy threads instead of going to another worker.
worker_connections = threads + 32 if WORKER == "gthread" else settings.GUARDSITE_MAX_CONNECTIONS
backlog = settings.GUARDSITE_LISTEN_BACKLOG
bind = os.environ.get("GUARDSITE_BIND", "127.0.0.1:8000").split(",")
# A Socket.IO connection is long-lived: never kill a worker for a quiet socket.
timeout = 0 if workers == 1 else 30
graceful_timeout = 10
accesslog = os.environ.get("GUARDSITE_ACCESS_LOG") or None

if settings.GUARDSITE_TLS:  # parsed once, as the HTTPS defaults of settings.py read it
    if settings.GUARDSITE_TLS_CERT and settings.GUARDSITE_TLS_KEY:
        certfile = settings.GUARDSITE_TLS_CERT
        keyfile = settings.GUARDSITE_TLS_KEY
    else:
        hosts = [address.rsplit(":", 1)[0] for address in bind]
        _dev = ensure_dev_certificate(Path(settings.GUARDSITE_STATE_DIR) / "tls", hosts)
        certfile, keyfile = str(_dev.cert_path), str(_dev.key_path)


def ssl_context(config: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """gunicorn's hook: the very context runsocket uses (TLS 1.2 at least, chain appended)."""
    chain = settings.GUARDSITE_TLS_CHAIN
    return server_context(
        Path(config.certfile), Path(config.keyfile), Path(chain) if chain else None
    )


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's hook, in the new worker before it starts: quiet the known notice, and
    escape what clients wrote in gunicorn's own lines (its handlers are not the
    project's ``LOGGING``)."""
    quiet_worker_logs(worker)


# gunicorn's exit status for a worker that failed to boot: the master stops instead of
# starting another worker that would fail the same way.
WORKER_BOOT_ERROR = 3


def post_worker_init(worker: Any) -> None:
    """gunicorn's hook, once the worker loaded the app: check, then start background tasks.

    runsocket runs Django's system checks before serving; this does the same for
    gunicorn, and refuses to serve when one is an error (a mistyped whitelist
    setting, say), exactly as ``manage.py check`` would report it.
    """
    from django.core import checks
    from django.db import connections

    errors = [m for m in checks.run_checks() if m.is_serious() and not m.is_silenced()]
    # The checks read the rules on this thread, which serves no socket: no connection
    # of theirs should stay open for the worker's life.
    connections.close_all()
    if errors:
        for error in errors:
            worker.log.error("System check failed, not serving: %s", error)
        sys.exit(WORKER_BOOT_ERROR)
    from guardsite.wsgi import sio

    sio.start_background_tasks()


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook as a worker stops: write the last counts of the refusal log."""
    from guardsite.wsgi import sio

    sio.flush_reports()
