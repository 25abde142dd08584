"""Staff manage the allowlist in Django admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.urls import reverse

from whitelist.models import AllowedOrigin
from whitelist.rules.cache import allowlist
from whitelist.rules.decision import decide

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = reverse("admin:whitelist_allowedorigin_add")
LIST_URL = reverse("admin:whitelist_allowedorigin_changelist")


def add_form(pattern: str) -> dict[str, str]:
    return {"pattern": pattern, "enabled": "on", "note": "partner shop"}


def test_staff_adds_a_rule_and_it_is_enforced_at_once(admin_client: Client) -> None:
    assert not decide({"HTTP_ORIGIN": "http://localhost:5001"}, allowlist).allowed
    response = admin_client.post(ADD_URL, add_form("http://LOCALHOST:5001"))
    assert response.status_code == 302
    assert AllowedOrigin.objects.get().pattern == "http://localhost:5001"
    assert decide({"HTTP_ORIGIN": "http://localhost:5001"}, allowlist).allowed


def test_malformed_rule_gets_a_form_error_and_is_not_saved(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, add_form("https://shop.example.com/cart"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["pattern"]
    assert errors == [
        "https://shop.example.com/cart is not a valid rule: "
        "a rule is an origin (scheme://host[:port]) without a path or query."
    ]
    assert not AllowedOrigin.objects.exists()


def test_duplicate_in_other_case_is_a_form_error(admin_client: Client) -> None:
    AllowedOrigin.objects.create(pattern="https://shop.example.com")
    response = admin_client.post(ADD_URL, add_form("https://SHOP.example.com"))
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors)
    assert AllowedOrigin.objects.count() == 1


def test_changelist_searches_and_filters(admin_client: Client) -> None:
    AllowedOrigin.objects.create(pattern="https://shop.example.com", note="shop")
    AllowedOrigin.objects.create(pattern="https://blog.example.com", enabled=False)
    found = admin_client.get(LIST_URL, {"q": "shop"}).context["cl"].result_list
    disabled = admin_client.get(LIST_URL, {"enabled__exact": "0"}).context["cl"].result_list
    assert [rule.pattern for rule in found] == ["https://shop.example.com"]
    assert [rule.pattern for rule in disabled] == ["https://blog.example.com"]


@pytest.mark.parametrize(("action", "enabled"), [("disable_rules", False), ("enable_rules", True)])
def test_bulk_actions_switch_rules_and_the_guard_follows(
    admin_client: Client, action: str, enabled: bool
) -> None:
    rules = [
        AllowedOrigin.objects.create(pattern=f"https://{name}.example.com", enabled=not enabled)
        for name in ("a", "b")
    ]
    response = admin_client.post(
        LIST_URL, {"action": action, "_selected_action": [rule.pk for rule in rules]}
    )
    assert response.status_code == 302
    assert set(AllowedOrigin.objects.values_list("enabled", flat=True)) == {enabled}
    assert decide({"HTTP_ORIGIN": "https://a.example.com"}, allowlist).allowed is enabled


def test_anonymous_users_are_sent_to_login(client: Client) -> None:
    response = client.get(LIST_URL)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_staff_without_permission_cannot_add(client: Client) -> None:
    user = User.objects.create_user("viewer", password="x-unused-in-tests", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_allowedorigin"))
    client.force_login(user)
    assert client.get(LIST_URL).status_code == 200
    assert client.post(ADD_URL, add_form("https://x.example.com")).status_code == 403
    assert not AllowedOrigin.objects.exists()


def test_staff_without_change_permission_gets_no_bulk_actions(client: Client) -> None:
    user = User.objects.create_user("viewer", password="x-unused-in-tests", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_allowedorigin"))
    client.force_login(user)
    rule = AllowedOrigin.objects.create(pattern="https://a.example.com")
    assert client.get(LIST_URL).context["action_form"] is None
    client.post(LIST_URL, {"action": "disable_rules", "_selected_action": [rule.pk]})
    assert AllowedOrigin.objects.get().enabled


def test_international_names_are_shown_in_unicode_and_look_alikes_flagged(
    admin_client: Client,
) -> None:
    AllowedOrigin.objects.create(pattern="https://bücher.example")
    AllowedOrigin.objects.create(pattern="https://pаypal.com")  # a Cyrillic "а"
    AllowedOrigin.objects.create(pattern="https://shop.example.com")
    page = admin_client.get(LIST_URL).content.decode()
    assert "https://xn--bcher-kva.example" in page and "https://bücher.example" in page
    assert "https://pаypal.com ⚠ mixes Cyrillic + Latin letters: a look-alike?" in page
    assert page.count("⚠") == 1


def test_the_form_names_the_schemes_of_extensions_and_apps(admin_client: Client) -> None:
    with override_settings(WHITELIST_EXTRA_SCHEMES=["myapp"]):
        form = admin_client.get(ADD_URL).context["adminform"].form
    help_text = form.fields["pattern"].help_text
    for scheme in ("chrome-extension://", "moz-extension://", "capacitor://", "myapp://"):
        assert scheme in help_text
    assert "no wildcard, no port" in help_text


def test_an_extension_rule_is_added_and_enforced(admin_client: Client) -> None:
    origin = "chrome-extension://" + "a" * 32
    response = admin_client.post(ADD_URL, add_form(origin.upper()))
    assert response.status_code == 302
    assert AllowedOrigin.objects.get().pattern == origin
    assert decide({"HTTP_ORIGIN": origin}, allowlist).allowed


def test_an_extension_id_in_the_wrong_form_gets_what_was_meant(admin_client: Client) -> None:
    uuid = "2c127fa4-62c7-7e4f-90e5-472b45eecfdc"
    response = admin_client.post(ADD_URL, add_form(f"chrome-extension://{uuid}"))
    assert response.context["adminform"].form.errors["pattern"] == [
        f"chrome-extension://{uuid} is not a valid rule: that is a UUID, which Firefox and "
        f"Safari give an installed extension. Did you mean moz-extension://{uuid}?"
    ]
    assert not AllowedOrigin.objects.exists()


def test_an_origin_whose_rule_is_disabled_is_led_to_that_rule(admin_client: Client) -> None:
    rule = AllowedOrigin.objects.create(pattern="http://localhost:5001", enabled=False)
    form = admin_client.get(ADD_URL, {"pattern": "http://localhost:5001"}).context["adminform"]
    assert form.form.initial["pattern"] == "http://localhost:5001"  # the refused page's link
    response = admin_client.post(ADD_URL, add_form("http://LOCALHOST:5001"))
    change_url = reverse("admin:whitelist_allowedorigin_change", args=[rule.pk])
    assert response.context["adminform"].form.errors["pattern"] == [
        f'A rule for http://localhost:5001 already exists, disabled: <a href="{change_url}">'
        "enable it</a>."
    ]
    assert f'<a href="{change_url}">enable it</a>' in response.content.decode()
    assert AllowedOrigin.objects.count() == 1


def test_a_pattern_without_its_scheme_gets_the_clis_suggestion(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, add_form("localhost:5001"))
    assert response.context["adminform"].form.errors["pattern"] == [
        "localhost:5001 is not a valid rule: a rule starts with its scheme, such as https://. "
        "Did you mean http://localhost:5001?"
    ]
