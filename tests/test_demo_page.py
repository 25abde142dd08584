"""The demo page's advice to a refused page: add its origin, or enable the rule that exists."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from whitelist.models import AllowedOrigin

pytestmark = pytest.mark.django_db

ORIGIN = "http://testserver"  # Django's test client asks for this host


def test_a_page_without_a_rule_links_to_the_add_form_filled_in(client: Client) -> None:
    page = client.get("/").content.decode()
    add = reverse("admin:whitelist_allowedorigin_add")
    assert f'<a href="{add}?pattern=http%3A%2F%2Ftestserver">Django admin</a>' in page
    assert f"whitelist add {ORIGIN}</code>" in page


def test_a_page_a_disabled_rule_would_admit_links_to_that_rule(client: Client) -> None:
    rule = AllowedOrigin.objects.create(pattern="http://testserver:*", enabled=False)
    AllowedOrigin.objects.create(pattern="http://other.test", enabled=False)
    page = client.get("/").content.decode()
    change = reverse("admin:whitelist_allowedorigin_change", args=[rule.pk])
    assert "A disabled rule matches this page: <code>http://testserver:*</code>" in page
    assert f'<a href="{change}">Django admin</a>' in page
    assert "whitelist add http://testserver:*</code>" in page


def test_an_enabled_rule_is_no_advice_to_enable(client: Client) -> None:
    AllowedOrigin.objects.create(pattern=ORIGIN)
    assert "A disabled rule" not in client.get("/").content.decode()
