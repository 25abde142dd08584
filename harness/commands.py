"""Management commands and ORM writes in the test process, on a live server's SQLite file.

A ``manage.py`` subprocess boots Django anew: about a second of CPU under
coverage, several beside a CPU hog. Where the process boundary proves nothing,
such as seeding a server's rules or users, or another process changing a rule,
the work runs here: the server is still another process, which reads what was
written.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TypeVar

from django.core.management import call_command
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper

T = TypeVar("T")

# pytest-django blocks database access outside marked tests; the test suite hands over
# its unblocking here (tests/conftest.py). The test database itself stays blocked.
database_access: Callable[[], AbstractContextManager[object]] = nullcontext


def on_server_database(database: Path, work: Callable[[], T]) -> T:
    """``work()`` with the ``default`` database being the server's SQLite file.

    It runs in a thread of its own, whose connection alone is swapped: the
    caller's thread may run an event loop (Playwright's), where Django refuses
    queries, and an in-process server's threads keep the test database.
    """

    def swapped() -> T:
        current = connections["default"]
        if current.vendor != "sqlite":
            raise RuntimeError(f"the test database is {current.vendor}, not SQLite")
        server = DatabaseWrapper({**current.settings_dict, "NAME": str(database)}, "default")
        connections["default"] = server
        try:
            with database_access():
                return work()
        finally:
            server.close()
            connections["default"] = current

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(swapped).result()


def command_on(database: Path, *args: str) -> str:
    """Run ``manage.py`` ``args`` here against ``database``; its output.

    A failing command raises ``CommandError`` as ``call_command`` does.
    """
    output = io.StringIO()
    on_server_database(database, lambda: call_command(*args, stdout=output, stderr=output))
    return output.getvalue()
