"""Rules are validated and stored normalised, whichever way they are saved."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from whitelist.models import AllowedOrigin, AllowlistRevision
from whitelist.origins import OriginError

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
