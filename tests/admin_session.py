"""Live-server helpers for the operations tests: staff users, admin sessions, the server's rows."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import requests

from harness.commands import on_server_database
from harness.live import LiveServer


def add_superuser(server: LiveServer, username: str, password: str) -> None:
    """A superuser in the server's database, written from this process."""
    add_user(server, username, password, is_superuser=True)


def add_user(server: LiveServer, username: str, password: str, **flags: bool) -> None:
    """A staff user (``is_superuser=True`` for all permissions) in the server's database.

    The password is hashed with the live servers' hasher (``tests.live_settings``).
    """
    from django.contrib.auth.hashers import MD5PasswordHasher, make_password
    from django.contrib.auth.models import User

    def create() -> None:
        user = User(username=username, email=f"{username}@example.test", is_staff=True, **flags)
        user.password = make_password(password, hasher=MD5PasswordHasher())
        user.save()

    on_server_database(server.database, create)


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
