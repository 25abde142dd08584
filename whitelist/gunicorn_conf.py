"""gunicorn settings that keep a project's console to what an operator can act on.

Served with gunicorn's eventlet worker (gunicorn before 26), a project's
console also shows eventlet's deprecation notice when gunicorn imports it,
gunicorn's "eventlet worker is DEPRECATED" at every worker's start, and what
clients wrote (``Referer``, ``User-Agent``) unescaped in gunicorn's own lines.
The notices say nothing an operator of a deliberate, pinned choice can act
on. Load this module as the configuration::

    gunicorn -c python:whitelist.gunicorn_conf -k eventlet -w 1 mysite.wsgi

or, from a ``gunicorn.conf.py`` of your own, import it (the warnings filter
is set on import, before gunicorn imports the worker) and call
``quiet_worker_logs(worker)`` in your ``post_fork``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from whitelist.engine.logs import ESCAPED_RECORDS

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


class KnownDeprecation(logging.Filter):
    """Drops gunicorn's notice that its eventlet worker is deprecated."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eventlet worker is DEPRECATED" not in record.getMessage()


def quiet_worker_logs(worker: Any) -> None:
    """In a new worker: no deprecation notice, and clients' text escaped in gunicorn's lines
    (its access log writes ``Referer`` and ``User-Agent`` as they came)."""
    worker.log.error_log.addFilter(KnownDeprecation())
    for log in (worker.log.error_log, worker.log.access_log):
        log.addFilter(ESCAPED_RECORDS)


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's hook, in the new worker before it starts."""
    quiet_worker_logs(worker)
