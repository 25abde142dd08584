"""Which statements leave eventlet's loop (whitelist.engine.blocking).

That a held lock really stalls no socket is proven live, on a monkey-patched
runsocket, by tests/test_database_stalls.py; this process is not monkey-patched.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2.extensions
import psycopg2.extras
import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper

from whitelist.engine.blocking import blocks_the_loop, off_the_loop
from whitelist.engine.green import loop_shares_thread


@pytest.fixture
def postgres_connection() -> PostgresWrapper:
    """Django's psycopg2 backend, never connected."""
    settings = {**connection.settings_dict, "ENGINE": "django.db.backends.postgresql"}
    return PostgresWrapper(settings, "postgres-unconnected")


@pytest.fixture
def green_psycopg2() -> Iterator[None]:
    """psycopg2 with a wait callback, as eventlet's monkey-patching installs one."""
    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(None)


def test_sqlite_statements_would_block_the_loop() -> None:
    assert connection.vendor == "sqlite"
    assert blocks_the_loop(connection)


def test_plain_psycopg2_would_block_the_loop(postgres_connection: PostgresWrapper) -> None:
    assert blocks_the_loop(postgres_connection)


@pytest.mark.usefixtures("green_psycopg2")
def test_psycopg2_made_green_waits_cooperatively(postgres_connection: PostgresWrapper) -> None:
    assert not blocks_the_loop(postgres_connection)


def test_without_eventlet_statements_stay_where_they_are() -> None:
    assert not loop_shares_thread()
    with off_the_loop():
        assert connection.execute_wrappers == []
