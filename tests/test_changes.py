"""Publishing a rule change never fails or holds up the change itself."""

from __future__ import annotations

import logging
from types import ModuleType, SimpleNamespace

import pytest
from django.test import override_settings

from harness.live import free_port
from whitelist.models import AllowedOrigin
from whitelist.rules import changes, feeds

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def unreachable_queue(monkeypatch: pytest.MonkeyPatch) -> str:
    """A Redis URL on a loopback port where nothing listens."""
    monkeypatch.setattr(changes, "_publish_paused_until", 0.0)
    return f"redis://127.0.0.1:{free_port()}/0"


def test_rule_changes_are_saved_when_the_queue_is_away(
    unreachable_queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="whitelist.rules.changes")
    with override_settings(WHITELIST_CHANGES_URL=unreachable_queue):
        for number in range(5):
            AllowedOrigin.objects.create(pattern=f"https://shop{number}.example.com")
        AllowedOrigin.objects.all().delete()
    assert AllowedOrigin.objects.count() == 0
    # One warning, not one per change: publishing pauses after a failure.
    warnings = [r for r in caplog.records if "Could not publish" in r.getMessage()]
    assert len(warnings) == 1


def test_nothing_is_published_without_a_queue(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="whitelist.rules.changes")
    AllowedOrigin.objects.create(pattern="https://shop.example.com")
    assert caplog.records == []


@pytest.mark.parametrize(
    ("driver", "url", "expected"),
    [
        ("psycopg2", None, changes.POSTGRESQL),
        ("psycopg2", "redis://127.0.0.1:1/0", changes.POSTGRESQL),
        ("psycopg", None, None),  # LISTEN needs psycopg2: poll (whitelist.W004 says why)
        ("psycopg", "redis://127.0.0.1:1/0", changes.REDIS),
    ],
)
def test_postgresql_pushes_through_listen_only_with_psycopg2(
    monkeypatch: pytest.MonkeyPatch, driver: str, url: str | None, expected: str | None
) -> None:
    """psycopg 3 is not installed here: the connection it would give is stood in for."""
    database = {"default": SimpleNamespace(vendor="postgresql", Database=ModuleType(driver))}
    monkeypatch.setattr(changes, "connections", database)
    monkeypatch.setattr(feeds, "connections", database)
    with override_settings(WHITELIST_CHANGES_URL=url):
        assert changes.push_source() == expected
