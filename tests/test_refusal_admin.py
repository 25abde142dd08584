"""Staff turn refused origins into rules with admin's "Allow these origins", whatever the log holds.

Any client can put a row in the refusal log: an origin no rule may name
(``http://0.0.0.0``), a namespace no rule may name (``/a b``). Such rows are
skipped and named; the others still become rules.
"""

from __future__ import annotations

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from whitelist.models import AllowedOrigin
from whitelist.records import RefusedConnect

pytestmark = pytest.mark.django_db(transaction=True)

LOG_URL = reverse("admin:whitelist_refusedconnect_changelist")


def refused(origin: str, namespace: str = "/") -> RefusedConnect:
    now = timezone.now()
    return RefusedConnect.objects.create(
        origin=origin,
        reason="origin-not-allowed",
        namespace=namespace,
        count=1,
        first_seen=now,
        last_seen=now,
    )


def allow(client: Client, rows: list[RefusedConnect], **choice: str) -> list[str]:
    """Run the action on ``rows`` as staff confirm it; the messages admin shows."""
    form = {"action": "allow_origins", "_selected_action": [row.pk for row in rows]}
    confirmation = client.post(LOG_URL, form)
    assert confirmation.status_code == 200
    done = client.post(LOG_URL, {**form, "post": "yes", **choice})
    assert done.status_code == 302, done.status_code
    return [str(message) for message in get_messages(done.wsgi_request)]


def stored() -> dict[str, str]:
    return dict(AllowedOrigin.objects.values_list("pattern", "namespaces"))


def test_an_origin_no_rule_may_name_is_skipped_and_named(admin_client: Client) -> None:
    rows = [refused("http://0.0.0.0"), refused("https://partner.test")]
    shown = admin_client.post(
        LOG_URL, {"action": "allow_origins", "_selected_action": [row.pk for row in rows]}
    )
    assert "http://0.0.0.0" in shown.content.decode()  # named on the confirmation page too
    said = allow(admin_client, rows, state="enabled")
    assert stored() == {"https://partner.test": ""}
    assert "Added https://partner.test (enabled): it is admitted now" in said
    assert (
        "No rule for http://0.0.0.0: 0.0.0.0 is the unspecified address, not a host a page "
        "comes from (list it in WHITELIST_BROAD_RULES if you mean it)" in said
    )


def test_a_namespace_no_rule_may_name_is_skipped_when_scoped(admin_client: Client) -> None:
    rows = [
        refused("https://spaced.test", "/a b"),
        refused("https://spaced.test", "/chat"),
        refused("https://only-spaced.test", "/c d"),
        refused("https://partner.test", "/orders"),
    ]
    said = allow(admin_client, rows, state="disabled", scoped="yes")
    assert stored() == {"https://partner.test": "/orders", "https://spaced.test": "/chat"}
    assert "No rule for https://spaced.test on '/a b': not a namespace a rule can name" in said
    assert "No rule for https://only-spaced.test on '/c d': not a namespace a rule can name" in said


def test_a_namespace_that_reads_as_two_never_widens_a_rule(admin_client: Client) -> None:
    said = allow(admin_client, [refused("https://two.test", "/chat /admin")], scoped="yes")
    assert stored() == {}
    assert "No rule for https://two.test on '/chat /admin': not a namespace a rule can name" in said


def test_unscoped_rules_ignore_the_namespaces(admin_client: Client) -> None:
    allow(admin_client, [refused("https://spaced.test", "/a b")], state="enabled")
    assert stored() == {"https://spaced.test": ""}


def test_more_namespaces_than_one_rule_holds_are_skipped_when_scoped(admin_client: Client) -> None:
    rows = [refused("https://many.test", f"/{letter * 99}") for letter in "abcdef"]
    rows.append(refused("https://partner.test", "/orders"))
    said = allow(admin_client, rows, scoped="yes")
    assert stored() == {"https://partner.test": "/orders"}
    assert "No rule for https://many.test: its namespaces are too many for one rule" in said


def test_refused_apps_become_rules_and_an_unlisted_scheme_says_how(admin_client: Client) -> None:
    rows = [refused("capacitor://localhost", "/chat"), refused("myapp://main")]
    said = allow(admin_client, rows, state="enabled", scoped="yes")
    assert stored() == {"capacitor://localhost": "/chat"}
    assert any("myapp://main" in line and "WHITELIST_EXTRA_SCHEMES" in line for line in said)
    with override_settings(WHITELIST_EXTRA_SCHEMES=["myapp"]):
        allow(admin_client, [rows[1]], state="enabled")
    assert stored() == {"capacitor://localhost": "/chat", "myapp://main": ""}


def test_a_rule_created_or_found_disabled_is_a_warning_not_a_success(admin_client: Client) -> None:
    AllowedOrigin.objects.create(pattern="https://old.test", enabled=False)
    form = {"action": "allow_origins", "_selected_action": []}
    form["_selected_action"] = [refused("https://new.test").pk, refused("https://old.test").pk]
    done = admin_client.post(LOG_URL, {**form, "post": "yes", "state": "disabled"})
    said = {str(message): message.level for message in get_messages(done.wsgi_request)}
    assert said == {
        "Added https://new.test disabled: it admits nobody until you enable it "
        '(Allowed origins, select it, "Enable selected origins")': messages.WARNING,
        "A disabled rule for https://old.test exists: left as it is, so it admits nobody "
        "until you enable it": messages.WARNING,
    }
