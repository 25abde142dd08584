"""Live-server helpers for the operations tests: staff users, admin sessions, the server's rows."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import requests

from harness.live import LiveServer


def add_superuser(server: LiveServer, username: str, password: str) -> None:
    """A superuser in the server's database, through Django's own command."""
    result = server.manage(
        "createsuperuser", "--no-input", "--username", username,
        "--email", f"{username}@example.test", DJANGO_SUPERUSER_PASSWORD=password,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def rows(server: LiveServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the server's own SQLite database, as another process would."""
    with closing(sqlite3.connect(server.database, timeout=10)) as db:
        return db.execute(sql, args).fetchall()


def refusals(server: LiveServer, origin: str) -> list[tuple[Any, ...]]:
    return rows(
        server,
        "SELECT reason, namespace, report_only, count, last_address, last_user_agent "
        "FROM whitelist_refusedconnect WHERE origin = ?",
        origin,
    )


def logged_in(server: LiveServer, username: str, password: str, timeout: float = 10) -> Any:
    """A requests session logged in to Django admin through its login form."""
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{server.url}/admin/login/", timeout=timeout)
    assert page.status_code == 200
    answer = session.post(
        f"{server.url}/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        timeout=timeout,
    )
    assert answer.url.endswith("/admin/"), "the login failed"
    return session
