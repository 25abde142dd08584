"""Django's own queries for a page or admin request, off eventlet's event loop.

The server's background work (refusal-log flushes, rule reads, user checks)
runs each statement in eventlet's native thread pool (``engine.blocking``), so
an SQLite lock held elsewhere stalls no socket. A page's write left on the
loop is worse than slow: while a flush holds SQLite's write lock between two of
its statements, the page's write waits in SQLite's busy handler on the loop's
only thread, and the flush cannot go on to release the lock until the loop runs
again: every socket froze for the database timeout (20 s), and the page failed.
First in ``MIDDLEWARE``, this sends the request's statements (a login, an admin
save, the session) to the pool as well. Outside eventlet it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from whitelist.engine.blocking import off_the_loop


class DatabaseOffTheLoopMiddleware:
    """Run the rest of the request with its database statements off eventlet's loop."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with off_the_loop():
            return self.get_response(request)
