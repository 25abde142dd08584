"""System checks catch settings that would weaken or break the guard."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.live import manage
from whitelist import checks
from whitelist.checks import check_deploy_settings, check_settings, check_socketio_versions


def ids() -> list[str]:
    return [message.id for message in check_settings()]


def test_defaults_pass() -> None:
    assert ids() == []


@pytest.mark.parametrize("interval", [0, -1, 61, "1", True, None])
def test_bad_refresh_interval_is_an_error(interval: object) -> None:
    with override_settings(WHITELIST_REFRESH_INTERVAL=interval):
        assert ids() == ["whitelist.E001"]


@override_settings(WHITELIST_REFUSAL_MESSAGE="  ")
def test_empty_refusal_message_is_an_error() -> None:
    assert ids() == ["whitelist.E002"]


@override_settings(WHITELIST_REFUSE_AT_HANDSHAKE="yes")
def test_non_boolean_switch_is_an_error() -> None:
    assert ids() == ["whitelist.E003"]


@override_settings(WHITELIST_ALLOW_MISSING_ORIGIN=True)
def test_allowing_missing_origin_is_a_warning() -> None:
    assert ids() == ["whitelist.W001"]


@override_settings(WHITELIST_REFRESH_INTERVAL=0)
def test_check_command_fails() -> None:
    with pytest.raises(SystemCheckError, match="whitelist.E001"):
        call_command("check")


def test_deploy_check_warns_when_insecure_sockets_are_allowed() -> None:
    assert [message.id for message in check_deploy_settings()] == ["whitelist.W002"]


@override_settings(WHITELIST_REQUIRE_SECURE=True)
def test_deploy_check_is_quiet_when_secure_is_required() -> None:
    assert check_deploy_settings() == []


def test_deploy_warning_shows_in_check_deploy(migrated_template: Path) -> None:
    result = manage(migrated_template, "check", "--deploy")
    assert "whitelist.W002" in result.stderr + result.stdout


def version_ids() -> list[str]:
    return [message.id for message in check_socketio_versions()]


def test_installed_socketio_releases_are_in_the_tested_range() -> None:
    assert version_ids() == []


@pytest.mark.parametrize(
    ("socketio", "engineio", "expected"),
    [
        ("5.14.0", "4.13.2", []),
        ("5.18.9", "4.15.9", []),
        ("5.13.0", "4.15.1", ["whitelist.E004"]),
        ("5.18.1", "4.13.1", ["whitelist.E004"]),
        ("5.19.0", "4.15.1", ["whitelist.W003"]),
        ("6.0.0", "4.16.0", ["whitelist.W003", "whitelist.W003"]),
        ("main", "4.15.1", ["whitelist.W003"]),
    ],
)
def test_socketio_releases_outside_the_tested_range_are_reported(
    monkeypatch: pytest.MonkeyPatch, socketio: str, engineio: str, expected: list[str]
) -> None:
    installed = {"python-socketio": socketio, "python-engineio": engineio}
    monkeypatch.setattr("whitelist.checks.installed_release", installed.get)
    assert version_ids() == expected


@pytest.mark.parametrize("url", ["http://queue.test", 6379, "redis"])
def test_changes_url_must_be_a_redis_url(url: object) -> None:
    with override_settings(WHITELIST_CHANGES_URL=url):
        assert ids() == ["whitelist.E005"]


@override_settings(WHITELIST_CHANGES_URL="redis://127.0.0.1:6379/0")
def test_pushed_changes_make_the_poll_a_slow_safety_net() -> None:
    from whitelist.conf import conf

    assert ids() == []
    assert conf.WHITELIST_REFRESH_INTERVAL == 5.0


def fake_database(driver: str) -> dict[str, Any]:
    """What check_database_driver reads of a PostgreSQL connection using ``driver``."""
    return {"default": SimpleNamespace(vendor="postgresql", Database=ModuleType(driver))}


@pytest.mark.parametrize(
    ("driver", "expected"), [("psycopg", ["whitelist.W004"]), ("psycopg2", [])]
)
def test_psycopg3_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, driver: str, expected: list[str]
) -> None:
    """psycopg 3 is not installed here: the connections it would give are stood in for."""
    monkeypatch.setattr(checks, "connections", fake_database(driver))
    assert [message.id for message in checks.check_database_driver()] == expected


def test_no_driver_warning_on_sqlite() -> None:
    assert checks.check_database_driver() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHITELIST_CONNECT_TIMEOUT", 0),
        ("WHITELIST_CONNECT_TIMEOUT", "10"),
        ("WHITELIST_PRECONNECT_BYTES", -1),
        ("WHITELIST_MAX_ATTACHMENTS", True),
        ("WHITELIST_MAX_ATTACHMENTS", 10.5),
        ("WHITELIST_PRECONNECT_BYTES", 16384.0),
        ("WHITELIST_CONNECT_RATE", "50"),
        ("WHITELIST_CONNECT_RATE", 0),
        ("WHITELIST_CONNECT_BURST", None),
        ("WHITELIST_PROXY_COUNT", -1),
        ("WHITELIST_PROXY_COUNT", 1.5),
        ("WHITELIST_PROXY_COUNT", "1"),
    ],
)
def test_a_limit_that_is_not_a_positive_number_is_an_error(name: str, value: object) -> None:
    with override_settings(**{name: value}):
        assert ids() == ["whitelist.E006"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("WHITELIST_CONNECT_RATE", None), ("WHITELIST_PROXY_COUNT", 0), ("WHITELIST_PROXY_COUNT", 2)],
)
def test_no_rate_limit_and_proxy_counts_are_valid(name: str, value: object) -> None:
    with override_settings(**{name: value}):
        assert ids() == []


@pytest.mark.django_db
def test_no_enabled_rule_is_a_deploy_warning() -> None:
    from whitelist.checks import check_some_rule_enabled
    from whitelist.models import AllowedOrigin

    assert [m.id for m in check_some_rule_enabled()] == ["whitelist.W005"]
    AllowedOrigin.objects.create(pattern="https://www.example.com", enabled=False)
    assert [m.id for m in check_some_rule_enabled()] == ["whitelist.W005"]
    AllowedOrigin.objects.create(pattern="https://shop.example.com")
    assert check_some_rule_enabled() == []


@pytest.mark.parametrize(
    ("days_left", "expected"),
    [(60, []), (10, ["guardsite.W001"]), (-1, ["guardsite.E002"])],
)
def test_a_tls_certificate_near_its_end_is_flagged(
    tmp_path: Path, days_left: int, expected: list[str]
) -> None:
    import datetime as dt

    from guardsite.checks import check_tls_certificate_expiry
    from guardsite.tls import generate

    # Valid for 90 days from a start chosen so that `days_left` remain today.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=90 - days_left)
    cert, _ = generate(["localhost"], days=90, now=start)
    path = tmp_path / "cert.pem"
    path.write_bytes(cert)
    with override_settings(GUARDSITE_TLS_CERT=str(path)):
        assert [m.id for m in check_tls_certificate_expiry()] == expected


def test_an_unreadable_tls_certificate_is_an_error(tmp_path: Path) -> None:
    from guardsite.checks import check_tls_certificate_expiry

    (tmp_path / "cert.pem").write_text("not a certificate")
    with override_settings(GUARDSITE_TLS_CERT=str(tmp_path / "cert.pem")):
        assert [m.id for m in check_tls_certificate_expiry()] == ["guardsite.E001"]
