"""Rules are validated and stored normalised, whichever way they are saved."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from whitelist.core.origins import OriginError
from whitelist.models import AllowedOrigin, AllowlistRevision

pytestmark = pytest.mark.django_db


def test_save_stores_the_normalised_rule() -> None:
    rule = AllowedOrigin.objects.create(pattern="HTTPS://Shop.Example.com:443")
    rule.refresh_from_db()
    assert rule.pattern == "https://shop.example.com"


def test_save_never_stores_a_malformed_rule() -> None:
    with pytest.raises(OriginError):
        AllowedOrigin.objects.create(pattern="https://example.com/path")
    assert not AllowedOrigin.objects.exists()


def test_full_clean_reports_a_clear_message() -> None:
    with pytest.raises(ValidationError) as caught:
        AllowedOrigin(pattern="https://user@example.com").full_clean()
    assert caught.value.message_dict["pattern"] == [
        "https://user@example.com is not a valid rule: "
        "must not contain user information (user@host)."
    ]


def test_uniqueness_is_checked_on_the_normalised_rule() -> None:
    AllowedOrigin.objects.create(pattern="https://shop.example.com")
    with pytest.raises(ValidationError) as caught:
        AllowedOrigin(pattern="HTTPS://SHOP.example.com").full_clean()
    assert "pattern" in caught.value.message_dict


def test_every_change_bumps_the_revision() -> None:
    start = AllowlistRevision.current()
    rule = AllowedOrigin.objects.create(pattern="https://a.example")
    rule.note = "edited"
    rule.save()
    rule.delete()
    assert AllowlistRevision.current() == start + 3


def test_revision_row_is_recreated_if_missing() -> None:
    AllowlistRevision.objects.all().delete()
    AllowlistRevision.bump()
    assert AllowlistRevision.current() == 1


def test_rule_has_timestamps_and_is_enabled_by_default() -> None:
    rule = AllowedOrigin.objects.create(pattern="https://a.example", note="partner")
    assert rule.enabled
    assert rule.created_at is not None
    assert rule.updated_at >= rule.created_at
    assert str(rule) == "https://a.example"


def test_bulk_create_normalises_and_bumps_the_revision() -> None:
    start = AllowlistRevision.current()
    AllowedOrigin.objects.bulk_create([AllowedOrigin(pattern="HTTPS://Bulk.Example:443")])
    assert AllowedOrigin.objects.get().pattern == "https://bulk.example"
    assert AllowlistRevision.current() == start + 1


def test_bulk_create_refuses_a_malformed_rule() -> None:
    with pytest.raises(OriginError):
        AllowedOrigin.objects.bulk_create([AllowedOrigin(pattern="https://x.example/path")])
    assert not AllowedOrigin.objects.exists()


def rule_fixture(folder: Path, pk: int, pattern: str, **fields: object) -> Path:
    """A ``loaddata`` fixture of one rule, as written by hand (``fields`` added as given)."""
    row = {
        "model": "whitelist.allowedorigin",
        "pk": pk,
        "fields": {
            "pattern": pattern,
            **fields,
            "enabled": True,
            "note": "",
            "created_at": "2026-11-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z",
        },
    }
    fixture = folder / "rules.json"
    fixture.write_text(json.dumps([row]))
    return fixture


def test_loaddata_stores_rules_normalised(tmp_path: Path) -> None:
    """A fixture's rule was stored as typed: allowed by the server, not found by remove."""
    fixture = rule_fixture(tmp_path, 7, "HTTPS://Shop.Example.com:443")
    call_command("loaddata", str(fixture), verbosity=0)
    assert AllowedOrigin.objects.get(pk=7).pattern == "https://shop.example.com"
    out = StringIO()
    call_command("whitelist", "remove", "https://shop.example.com", stdout=out)
    assert out.getvalue() == "removed https://shop.example.com\n"


def test_a_fixture_with_a_malformed_rule_does_not_load(tmp_path: Path) -> None:
    fixture = rule_fixture(tmp_path, 8, "https://*")
    with pytest.raises(Exception, match=r"AllowedOrigin\(pk=8\): a wildcard may only stand"):
        call_command("loaddata", str(fixture), verbosity=0)
    assert not AllowedOrigin.objects.exists()


def test_loaddata_stores_namespaces_normalised(tmp_path: Path) -> None:
    """A fixture's namespaces are stored as admin and the command store them."""
    fixture = rule_fixture(tmp_path, 9, "https://shop.example.com", namespaces="/orders, /chat")
    call_command("loaddata", str(fixture), verbosity=0)
    assert AllowedOrigin.objects.get(pk=9).namespaces == "/chat /orders"


def test_a_fixture_with_malformed_namespaces_does_not_load(tmp_path: Path) -> None:
    fixture = rule_fixture(tmp_path, 10, "https://shop.example.com", namespaces="chat")
    with pytest.raises(Exception, match=r"AllowedOrigin\(pk=10\): 'chat' is not a namespace"):
        call_command("loaddata", str(fixture), verbosity=0)
    assert not AllowedOrigin.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_migration_0002_normalises_rules_stored_as_typed() -> None:
    """Rows written before every path normalised (raw SQL, loaddata) are fixed once."""
    from django.db import connection

    call_command("migrate", "whitelist", "0001", verbosity=0)
    try:
        with connection.cursor() as cursor:
            for pattern, enabled in [
                ("HTTPS://Shop.Example.com:443", True),  # normalised in place
                ("https://b.example", True),
                ("HTTPS://B.example", False),  # merged into the rule above
                ("https://*", True),  # does not parse: disabled, with the reason
            ]:
                cursor.execute(
                    "INSERT INTO whitelist_allowedorigin (pattern, enabled, note, created_at,"
                    " updated_at) VALUES (%s, %s, '', '2026-11-01', '2026-11-01')",
                    [pattern, enabled],
                )
    finally:
        call_command("migrate", "whitelist", verbosity=0)
    rules = {rule.pattern: (rule.enabled, rule.note) for rule in AllowedOrigin.objects.all()}
    assert rules["https://shop.example.com"] == (True, "")
    assert rules["https://b.example"] == (True, "")
    assert rules["https://*"][0] is False
    assert rules["https://*"][1].startswith("disabled by migration 0002: a wildcard")
    assert len(rules) == 3


def test_loaddata_stores_an_extension_rule_normalised(tmp_path: Path) -> None:
    uuid = "2c127fa4-62c7-7e4f-90e5-472b45eecfdc"
    fixture = rule_fixture(tmp_path, 9, f"MOZ-EXTENSION://{uuid.upper()}")
    call_command("loaddata", str(fixture), verbosity=0)
    assert AllowedOrigin.objects.get(pk=9).pattern == f"moz-extension://{uuid}"


def test_a_fixture_with_an_extension_wildcard_does_not_load(tmp_path: Path) -> None:
    fixture = rule_fixture(tmp_path, 10, "chrome-extension://*")
    with pytest.raises(Exception, match=r"AllowedOrigin\(pk=10\): a chrome-extension origin"):
        call_command("loaddata", str(fixture), verbosity=0)
    assert not AllowedOrigin.objects.exists()
