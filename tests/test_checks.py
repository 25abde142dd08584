"""System checks catch settings that would weaken or break the guard."""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from harness.live import free_port, manage
from whitelist import environment_checks
from whitelist.checks import check_settings
from whitelist.conf import conf
from whitelist.environment_checks import (
    check_broad_rules,
    check_debug,
    check_deploy_settings,
    check_metrics_public,
    check_proxy_count,
    check_report_only,
    check_socketio_versions,
)


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


@pytest.mark.parametrize(
    "name",
    [
        "WHITELIST_REFUSE_AT_HANDSHAKE",
        "WHITELIST_REPORT_ONLY",
        "WHITELIST_METRICS_PUBLIC",
        "WHITELIST_REFUSAL_LOG",
    ],
)
def test_non_boolean_switch_is_an_error(name: str) -> None:
    with override_settings(**{name: "yes"}):
        assert ids() == ["whitelist.E003"]


@override_settings(WHITELIST_ALLOW_MISSING_ORIGIN=True)
def test_allowing_missing_origin_is_a_warning() -> None:
    assert ids() == ["whitelist.W001"]


@pytest.mark.django_db  # check_broad_rules reads the rules
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
    monkeypatch.setattr("whitelist.environment_checks.installed_release", installed.get)
    assert version_ids() == expected


@pytest.mark.parametrize("url", ["http://queue.test", 6379, "redis"])
def test_changes_url_must_be_a_redis_url(url: object) -> None:
    with override_settings(WHITELIST_CHANGES_URL=url):
        assert ids() == ["whitelist.E005"]


@override_settings(WHITELIST_CHANGES_URL="redis://127.0.0.1:6379/0")
def test_pushed_changes_make_the_poll_a_slow_safety_net() -> None:
    from whitelist.rules.changes import refresh_interval

    assert ids() == []
    assert refresh_interval() == 5.0


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
    monkeypatch.setattr(environment_checks, "connections", fake_database(driver))
    assert [message.id for message in environment_checks.check_database_driver()] == expected


def test_no_driver_warning_on_sqlite() -> None:
    assert environment_checks.check_database_driver() == []


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
        ("WHITELIST_REFUSAL_RATE", "200"),
        ("WHITELIST_REFUSAL_RATE", -1),
        ("WHITELIST_CONNECT_BURST", None),
        ("WHITELIST_PROXY_COUNT", -1),
        ("WHITELIST_PROXY_COUNT", 1.5),
        ("WHITELIST_PROXY_COUNT", "1"),
        ("WHITELIST_REFUSAL_LOG_MAX_AGE", 0),
        ("WHITELIST_FLUSH_INTERVAL", "1"),
        ("WHITELIST_USER_RECHECK_INTERVAL", -2.0),
        ("WHITELIST_REFUSAL_LOG_MAX_ROWS", 0),
        ("WHITELIST_REFUSAL_LOG_MAX_ROWS", 10_000.0),
    ],
)
def test_a_limit_that_is_not_a_positive_number_is_an_error(name: str, value: object) -> None:
    with override_settings(**{name: value}):
        assert ids() == ["whitelist.E006"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHITELIST_CONNECT_RATE", None),
        ("WHITELIST_REFUSAL_RATE", None),
        ("WHITELIST_PROXY_COUNT", 0),
        ("WHITELIST_PROXY_COUNT", 2),
    ],
)
def test_no_rate_limit_and_proxy_counts_are_valid(name: str, value: object) -> None:
    with override_settings(**{name: value}):
        assert ids() == []


@pytest.mark.parametrize(
    "namespaces",
    [{}, {"/account": [], "/chat": None, "/staff": ("app.view_thing", "app.change_thing")}],
)
def test_usable_protected_namespaces_pass(namespaces: object) -> None:
    with override_settings(WHITELIST_PROTECTED_NAMESPACES=namespaces):
        assert ids() == []


@pytest.mark.parametrize(
    ("namespaces", "message"),
    [
        (["/account"], "WHITELIST_PROTECTED_NAMESPACES is ['/account'], not a dict."),
        ({"account": []}, "WHITELIST_PROTECTED_NAMESPACES has 'account': []."),
        ({1: []}, "WHITELIST_PROTECTED_NAMESPACES has 1: []."),
        ({"/staff": "app.view"}, "WHITELIST_PROTECTED_NAMESPACES has '/staff': 'app.view'."),
        ({"/staff": ["view"]}, "WHITELIST_PROTECTED_NAMESPACES has '/staff': ['view']."),
        ({"/staff": [None]}, "WHITELIST_PROTECTED_NAMESPACES has '/staff': [None]."),
    ],
)
def test_unusable_protected_namespaces_are_an_error(namespaces: object, message: str) -> None:
    with override_settings(WHITELIST_PROTECTED_NAMESPACES=namespaces):
        [error] = check_settings()
    assert (error.id, error.msg) == ("whitelist.E007", message)


@override_settings(WHITELIST_PROTECTED_NAMESPACES={"/a": ["x"], "/b": [], "/c": ["y"]})
def test_each_unusable_protected_namespace_is_named() -> None:
    assert [(error.id, error.msg) for error in check_settings()] == [
        ("whitelist.E007", "WHITELIST_PROTECTED_NAMESPACES has '/a': ['x']."),
        ("whitelist.E007", "WHITELIST_PROTECTED_NAMESPACES has '/c': ['y']."),
    ]


@pytest.mark.django_db
@override_settings(WHITELIST_PROTECTED_NAMESPACES={"/staff": "app.view_thing"})
def test_check_command_fails_on_unusable_protected_namespaces() -> None:
    with pytest.raises(SystemCheckError, match="whitelist.E007"):
        call_command("check")


@pytest.mark.parametrize("token", [None, "s" * 16])
def test_no_metrics_token_or_a_long_one_passes(token: str | None) -> None:
    with override_settings(WHITELIST_METRICS_TOKEN=token):
        assert ids() == []


@pytest.mark.parametrize(
    ("token", "described"),
    [
        ("short-secret", "only 12 characters long"),
        ("", "only 0 characters long"),
        (1234567890123456789, "of type int, not a string"),
    ],
)
def test_a_short_metrics_token_is_an_error_naming_only_its_length(
    token: object, described: str
) -> None:
    with override_settings(WHITELIST_METRICS_TOKEN=token):
        [error] = check_settings()
    assert error.id == "whitelist.E008"
    assert error.msg == f"WHITELIST_METRICS_TOKEN is {described}: /metrics is served to nobody."


@pytest.mark.django_db
@override_settings(WHITELIST_METRICS_TOKEN="short-secret")
def test_check_command_fails_on_a_short_metrics_token_without_showing_it() -> None:
    with pytest.raises(SystemCheckError, match="whitelist.E008") as raised:
        call_command("check")
    assert "short-secret" not in str(raised.value)


def check_output(**options: Any) -> str:
    """What ``manage.py check`` prints when it finds only warnings (they go to stderr)."""
    output = io.StringIO()
    call_command("check", stdout=output, stderr=output, **options)
    return output.getvalue()


def store_raw(pattern: str, *, enabled: bool = True) -> None:
    """A rule written around the model's validation, as older code or raw SQL could."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO whitelist_allowedorigin (pattern, enabled, note, created_at, updated_at)"
            " VALUES (%s, %s, '', '2026-11-01', '2026-11-01')",
            [pattern, enabled],
        )


@pytest.mark.django_db
def test_an_enabled_rule_staff_listed_as_broad_is_a_warning() -> None:
    from whitelist.models import AllowedOrigin

    with override_settings(WHITELIST_BROAD_RULES=["https://*.github.io"]):
        AllowedOrigin.objects.bulk_create([AllowedOrigin(pattern="https://*.github.io")])
        [warning] = check_broad_rules()
    assert warning.id == "whitelist.W006"
    assert warning.msg == (
        "Enabled rules too broad to mean what they seem: https://*.github.io "
        "(github.io is a public suffix: *.github.io admits every site under it)."
    )


@pytest.mark.django_db
def test_every_enabled_broad_rule_written_around_the_checks_is_named() -> None:
    store_raw("http://*.nip.io:*")
    store_raw("https://*.co.uk", enabled=False)
    store_raw("http://0.0.0.0:*")
    [warning] = check_broad_rules()
    assert warning.msg == (
        "Enabled rules too broad to mean what they seem: "
        "http://*.nip.io:* (nip.io resolves any name to the address it spells: anyone can "
        "serve there); http://0.0.0.0:* (0.0.0.0 is the unspecified address, not a host a "
        "page comes from)."
    )


@pytest.mark.django_db
def test_narrow_and_disabled_rules_are_not_broad() -> None:
    from whitelist.models import AllowedOrigin

    AllowedOrigin.objects.create(pattern="https://*.example.com")
    AllowedOrigin.objects.create(pattern="https://me.github.io")
    store_raw("https://*.github.io", enabled=False)
    store_raw("not a rule")  # malformed: the server skips it, and so does this check
    assert check_broad_rules() == []


@pytest.mark.django_db
def test_check_command_reports_a_broad_rule() -> None:
    store_raw("https://*.github.io")
    assert "whitelist.W006" in check_output()


@pytest.mark.live
def test_broad_rule_check_is_quiet_before_migrate(tmp_path: Path) -> None:
    database = tmp_path / "empty.sqlite3"
    database.touch()
    result = manage(database, "check")
    assert (result.returncode, result.stdout) == (
        0,
        "System check identified no issues (0 silenced).\n",
    )


DEPLOY_SWITCHES = [
    (check_debug, "DEBUG", "whitelist.W007"),
    (check_report_only, "WHITELIST_REPORT_ONLY", "whitelist.W008"),
    (check_metrics_public, "WHITELIST_METRICS_PUBLIC", "whitelist.W009"),
]


@pytest.mark.parametrize(("check", "setting", "warning"), DEPLOY_SWITCHES)
def test_a_deploy_switch_left_on_is_a_warning(check: Any, setting: str, warning: str) -> None:
    with override_settings(**{setting: True}):
        assert [message.id for message in check()] == [warning]


@pytest.mark.parametrize(("check", "setting", "warning"), DEPLOY_SWITCHES)
def test_a_deploy_switch_turned_off_is_quiet(check: Any, setting: str, warning: str) -> None:
    with override_settings(**{setting: False}):
        assert check() == []


@pytest.mark.django_db
@pytest.mark.parametrize(("check", "setting", "warning"), DEPLOY_SWITCHES)
@pytest.mark.parametrize("on", [True, False])
def test_check_deploy_reports_a_deploy_switch_only_when_on(
    check: Any, setting: str, warning: str, on: bool
) -> None:
    with override_settings(**{setting: on}):
        assert (warning in check_output(deploy=True)) is on


@pytest.mark.django_db
@pytest.mark.parametrize(("check", "setting", "warning"), DEPLOY_SWITCHES)
def test_plain_check_leaves_deploy_switches_to_check_deploy(
    check: Any, setting: str, warning: str
) -> None:
    with override_settings(**{setting: True}):
        assert warning not in check_output()


@pytest.mark.django_db
def test_no_enabled_rule_is_a_deploy_warning() -> None:
    from whitelist.environment_checks import check_some_rule_enabled
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


@pytest.mark.parametrize(
    ("value", "errors", "kept"),
    [
        ("myapp", 1, set()),
        (["MyApp"], 1, set()),
        (["file", "wss", "my app"], 3, set()),
        (["ok", 7], 1, {"ok"}),
        (["myapp", "com.example.app"], 0, {"myapp", "com.example.app"}),
    ],
)
def test_unusable_extra_schemes_are_an_error_and_left_out(
    value: object, errors: int, kept: set[str]
) -> None:
    with override_settings(WHITELIST_EXTRA_SCHEMES=value):
        assert ids() == ["whitelist.E010"] * errors
        schemes = conf.WHITELIST_EXTRA_SCHEMES
        assert schemes == kept


@pytest.mark.parametrize(
    ("proxy_header", "count", "ids"),
    [
        (("HTTP_X_FORWARDED_PROTO", "https"), 0, ["whitelist.W013"]),
        (("HTTP_X_FORWARDED_PROTO", "https"), 1, []),
        (None, 0, []),
    ],
)
def test_a_trusted_proxy_without_a_proxy_count_is_a_deploy_warning(
    proxy_header: tuple[str, str] | None, count: int, ids: list[str]
) -> None:
    with override_settings(SECURE_PROXY_SSL_HEADER=proxy_header, WHITELIST_PROXY_COUNT=count):
        assert [message.id for message in check_proxy_count()] == ids


@pytest.mark.live  # runs manage.py
def test_check_deploy_says_when_the_database_cannot_be_reached(migrated_template: Path) -> None:
    unreachable = f"postgres://guardsite@127.0.0.1:{free_port()}/guardsite"
    result = manage(migrated_template, "check", "--deploy", DATABASE_URL=unreachable)
    said = result.stdout + result.stderr
    assert "whitelist.W014" in said and "The database cannot be reached" in said, said
    reached = manage(migrated_template, "check", "--deploy")
    assert "whitelist.W014" not in reached.stdout + reached.stderr
