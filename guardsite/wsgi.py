"""The one WSGI application: Socket.IO and Django pages, admin and static files.

Run it with ``manage.py runsocket`` or gunicorn (gunicorn.conf.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guardsite.settings")

django_application = get_wsgi_application()

from guardsite.sockets import create_server  # noqa: E402 - needs Django set up
from whitelist import guarded_application  # noqa: E402

logger = logging.getLogger(__name__)


class ErrorsStream:
    """``wsgi.errors`` with one line per write, and a closed socket's shutdown kept quiet.

    eventlet's WebSocket writes "socket shutdown error: [Errno 9] Bad file
    descriptor" there, without a newline, when it closes a socket that is
    already closed (under gunicorn's eventlet worker, for every WebSocket a
    client closes first); the lines ran into each other. That one is logged at
    DEBUG; anything else is written through, ending with a newline.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        if "socket shutdown error: [Errno 9]" in text:
            logger.debug("%s", text.strip())
            return
        self._stream.write(text if text.endswith("\n") else text + "\n")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def with_errors_stream(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "wsgi.errors" in environ:
            environ["wsgi.errors"] = ErrorsStream(environ["wsgi.errors"])
        return app(environ, start_response)

    return serve


sio = create_server()
# The gate in front of Socket.IO; runsocket asks it which addresses flood.
gate = guarded_application(sio, django_application)
application = with_errors_stream(gate)
