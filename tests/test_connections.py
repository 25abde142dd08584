"""Database connections are closed around handlers in threads that opened one, and only there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from whitelist.models import AllowedOrigin
from whitelist.server import connections

pytestmark = pytest.mark.django_db(transaction=True)


def in_new_thread(work: Callable[[], Any]) -> Any:
    """``work()``'s result, run in a thread that starts with no database connection."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    return results[0]


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every call of Django's ``close_old_connections`` the guard makes."""
    calls: list[int] = []
    original = connections.close_old_connections

    def counted() -> None:
        calls.append(threading.get_ident())
        original()

    monkeypatch.setattr(connections, "close_old_connections", counted)
    return calls


def test_a_handler_that_queried_has_its_connection_closed(closes: list[int]) -> None:
    def handler() -> tuple[bool, bool, int]:
        AllowedOrigin.objects.count()
        assert connection.connection is not None
        connections.close_connections()
        remembered = threading.get_ident() in connections._holding
        return connection.connection is None, remembered, len(closes)

    closed, still_remembered, looks = in_new_thread(handler)
    assert (closed, still_remembered, looks) == (True, False, 1)


def test_a_thread_that_opened_no_connection_is_not_searched(closes: list[int]) -> None:
    def handler() -> None:
        connections.close_connections()
        connections.close_connections()

    in_new_thread(handler)
    assert closes == []


def test_a_persistent_connection_stays_until_it_is_obsolete(closes: list[int]) -> None:
    def handler() -> tuple[bool, bool]:
        connection.settings_dict["CONN_MAX_AGE"] = 60
        try:
            AllowedOrigin.objects.count()
            connections.close_connections()
            kept = connection.connection is not None
            connection.close_at = time.monotonic() - 1  # its age is up
            connections.close_connections()
            return kept, connection.connection is None
        finally:
            connection.settings_dict["CONN_MAX_AGE"] = 0

    kept, closed_when_obsolete = in_new_thread(handler)
    assert (kept, closed_when_obsolete, len(closes)) == (True, True, 2)
