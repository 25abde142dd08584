"""``manage.py whitelist``: add, remove, list and check."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from harness.commands import command_on
from harness.live import manage, migrated_copy
from whitelist.models import AllowedOrigin

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("whitelist", *args, stdout=out)
    return out.getvalue()


def test_add_normalises_and_reports() -> None:
    output = run("add", "HTTPS://Shop.Example.com", "https://*.corp.test", "--note", "partners")
    assert output.splitlines() == ["added https://shop.example.com", "added https://*.corp.test"]
    assert AllowedOrigin.objects.get(pattern="https://shop.example.com").note == "partners"


def test_adding_an_existing_rule_is_not_an_error() -> None:
    run("add", "https://shop.example.com")
    assert run("add", "https://shop.example.com") == "already allowed https://shop.example.com\n"
    assert AllowedOrigin.objects.count() == 1


def test_adding_a_disabled_rule_enables_it() -> None:
    AllowedOrigin.objects.create(pattern="https://shop.example.com", enabled=False)
    assert run("add", "https://shop.example.com") == "updated https://shop.example.com\n"
    assert AllowedOrigin.objects.get().enabled


def test_a_malformed_rule_adds_nothing() -> None:
    with pytest.raises(CommandError, match="'https://bad.example/x' is not a valid rule"):
        run("add", "https://good.example", "https://bad.example/x")
    assert not AllowedOrigin.objects.exists()


def test_remove_reports_missing_rules() -> None:
    run("add", "https://shop.example.com")
    out = StringIO()
    with pytest.raises(SystemExit) as status:
        call_command(
            "whitelist", "remove", "https://SHOP.example.com", "https://other.example", stdout=out
        )
    assert status.value.code == 1
    assert out.getvalue().splitlines() == [
        "removed https://shop.example.com",
        "not found https://other.example",
    ]
    assert not AllowedOrigin.objects.exists()


def test_list_shows_state_and_note() -> None:
    run("add", "https://shop.example.com", "--note", "shop")
    AllowedOrigin.objects.create(pattern="https://old.example", enabled=False)
    assert run("list").splitlines() == [
        "disabled  https://old.example",
        "enabled   https://shop.example.com  # shop",
    ]


def test_list_of_nothing_says_everything_is_refused() -> None:
    assert "every Socket.IO connection is refused" in run("list")


def test_check_uses_the_server_decision_for_origins_and_urls() -> None:
    run("add", "https://*.example.com")
    assert run("check", "https://a.example.com").splitlines() == [
        "allowed: https://a.example.com",
        "  reason: allowed (matches https://*.example.com)",
        "  origin: https://a.example.com (judged as the origin header)",
        "  rule: https://*.example.com",
    ]
    assert "judged as the referer header" in run("check", "https://a.example.com/page?q=1")


def test_check_exit_status_in_a_real_process(tmp_path: Path, migrated_template: Path) -> None:
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
    command_on(database, "whitelist", "add", "https://shop.example.com")
    allowed = manage(database, "whitelist", "check", "https://shop.example.com")
    denied = manage(database, "whitelist", "check", "https://shop.example.com.evil.com")
    malformed = manage(database, "whitelist", "check", "https://shop.example.com@evil.com")
    bad_rule = manage(database, "whitelist", "add", "ftp://x")
    assert (allowed.returncode, denied.returncode, malformed.returncode) == (0, 1, 1)
    assert denied.stdout.startswith("denied: https://shop.example.com.evil.com")
    assert "malformed-origin" in malformed.stdout
    assert bad_rule.returncode == 1
    assert "the scheme must be http or https" in bad_rule.stderr
    assert "Traceback" not in bad_rule.stderr


def test_a_pattern_without_its_scheme_gets_a_hint_and_a_batch_says_nothing_was_added() -> None:
    with pytest.raises(CommandError) as refused:
        run("add", "https://good.example", "localhost:5001")
    assert "Did you mean http://localhost:5001?" in str(refused.value)
    assert "Nothing changed: none of the 2 were added." in str(refused.value)
    assert not AllowedOrigin.objects.exists()
    with pytest.raises(CommandError, match=r"Did you mean https://shop.example.com\? .*not added"):
        run("add", "shop.example.com")


def test_keep_existing_never_re_enables_what_staff_disabled() -> None:
    AllowedOrigin.objects.create(pattern="http://localhost:5000", enabled=False, note="off")
    output = run("add", "http://localhost:5000", "https://localhost:5443", "--keep-existing")
    assert output.splitlines() == [
        "kept, disabled: http://localhost:5000",
        "added https://localhost:5443",
    ]
    kept = AllowedOrigin.objects.get(pattern="http://localhost:5000")
    assert (kept.enabled, kept.note) == (False, "off")


def test_check_accepts_an_international_name_as_typed_and_judges_what_browsers_send() -> None:
    run("add", "https://bücher.example")
    assert run("check", "https://Bücher.example").splitlines() == [
        "allowed: https://Bücher.example",
        "  a browser sends it as: https://xn--bcher-kva.example",
        "  reason: allowed (matches https://xn--bcher-kva.example)",
        "  origin: https://xn--bcher-kva.example (judged as the origin header)",
        "  rule: https://xn--bcher-kva.example",
    ]


def test_remove_exits_1_when_a_rule_was_not_there(tmp_path: Path, migrated_template: Path) -> None:
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
    command_on(database, "whitelist", "add", "https://a.example")
    partly = manage(database, "whitelist", "remove", "https://a.example", "https://b.example")
    assert partly.returncode == 1
    assert partly.stdout.splitlines() == [
        "removed https://a.example",
        "not found https://b.example",
    ]
    command_on(database, "whitelist", "add", "https://a.example")
    assert manage(database, "whitelist", "remove", "https://a.example").returncode == 0


def test_check_percent_encodes_a_non_ascii_path_as_browsers_do() -> None:
    run("add", "https://bücher.example")
    output = run("check", "https://bücher.example/straße?q=ü")
    assert "  a browser sends it as: https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC" in output
    assert output.startswith("allowed:") and "judged as the referer header" in output


def test_list_escapes_control_characters_in_notes() -> None:
    """A note saved through admin could hold terminal escape sequences."""
    AllowedOrigin.objects.create(pattern="https://shop.example.com", note="ok\x1b[2J\x07 done")
    listed = run("list").splitlines()
    assert listed == ["enabled   https://shop.example.com  # ok\\x1b[2J\\x07 done"]


def test_an_extension_rule_is_added_and_checked() -> None:
    origin = "chrome-extension://" + "a" * 32
    assert run("add", origin) == f"added {origin}\n"
    assert run("check", f"{origin}/popup.html").startswith(f"allowed: {origin}/popup.html")


def test_check_says_what_an_extension_id_in_the_wrong_form_meant() -> None:
    uuid = "2c127fa4-62c7-7e4f-90e5-472b45eecfdc"
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("whitelist", "check", f"chrome-extension://{uuid}", stdout=out)
    assert out.getvalue().splitlines()[1:] == [
        "  reason: malformed-origin (Origin: that is a UUID, which Firefox and Safari give "
        "an installed extension)",
        f"  did you mean: moz-extension://{uuid}",
    ]


def test_add_says_what_an_extension_id_in_the_wrong_form_meant() -> None:
    with pytest.raises(CommandError, match=r"Did you mean chrome-extension://a{32}\?"):
        run("add", "moz-extension://" + "a" * 32)
    with pytest.raises(CommandError, match="no wildcard"):
        run("add", "chrome-extension://*")
    assert not AllowedOrigin.objects.exists()


def test_check_points_to_a_disabled_rule_that_would_admit() -> None:
    run("add", "https://*.shop.example")
    AllowedOrigin.objects.filter(pattern="https://*.shop.example").update(enabled=False)
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("whitelist", "check", "https://eu.shop.example", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "  a disabled rule matches: https://*.shop.example; enable it in admin, "
        "or: whitelist add https://*.shop.example"
    )
