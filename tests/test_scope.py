"""Rules too broad to mean what staff think are refused, unless listed as meant."""

from __future__ import annotations

import pytest
from django.test import override_settings

from whitelist.conf import conf
from whitelist.core.origins import OriginError
from whitelist.core.scope import parse_scoped_rule

REFUSED = {
    "https://*.co.uk": "co.uk is a public suffix",
    "https://*.github.io": "github.io is a public suffix",
    "https://*.herokuapp.com": "herokuapp.com is a public suffix",
    "https://*.vercel.app": "vercel.app is a public suffix",
    "https://*.s3.amazonaws.com:*": "s3.amazonaws.com is a public suffix",
    # A public suffix below the wildcard's domain: anyone can name a site there.
    "https://*.amazonaws.com": "s3.amazonaws.com is a public suffix under amazonaws.com",
    "https://*.core.windows.net": "web.core.windows.net is a public suffix under core.windows",
    "https://*.com": "needs a domain of at least two labels",  # refused by the parser already
    "http://*.nip.io:*": "nip.io resolves any name",
    "https://*.sslip.io": "sslip.io resolves any name",
    "http://0.0.0.0:*": "0.0.0.0 is the unspecified address",
    "http://[::]:*": ":: is the unspecified address",
}
ACCEPTED = [
    "https://*.example.com",
    "https://*.example.co.uk",
    "https://me.github.io",
    "https://*.me.github.io",
    "https://github.io",
    "http://*.localhost:*",
    "http://127.0.0.1:5000",
    "https://*.1.2.3.4.nip.io",
]


@pytest.mark.parametrize(("pattern", "reason"), REFUSED.items())
def test_too_broad_rules_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(OriginError, match=reason):
        parse_scoped_rule(pattern, frozenset())


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_narrow_rules_are_accepted(pattern: str) -> None:
    assert parse_scoped_rule(pattern, frozenset())


def test_a_wildcard_above_a_public_suffix_is_accepted_when_listed() -> None:
    with override_settings(WHITELIST_BROAD_RULES=["https://*.amazonaws.com"]):
        rule = parse_scoped_rule("https://*.amazonaws.com", conf.WHITELIST_BROAD_RULES)
    assert str(rule) == "https://*.amazonaws.com"


def test_a_broad_rule_staff_mean_is_listed_in_settings() -> None:
    with override_settings(WHITELIST_BROAD_RULES=["HTTPS://*.GitHub.io"]):
        assert (
            str(parse_scoped_rule("https://*.github.io", conf.WHITELIST_BROAD_RULES))
            == "https://*.github.io"
        )
        with pytest.raises(OriginError):
            parse_scoped_rule("https://*.gitlab.io", conf.WHITELIST_BROAD_RULES)


@pytest.mark.django_db
def test_admin_and_cli_refuse_them_and_the_server_ignores_stored_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from django.core.exceptions import ValidationError
    from django.core.management import CommandError, call_command
    from django.db import connection

    from whitelist.models import AllowedOrigin
    from whitelist.rules.cache import load_snapshot
    from whitelist.rules.decision import decide_headers

    with pytest.raises(ValidationError, match="public suffix"):
        AllowedOrigin(pattern="https://*.github.io").full_clean()
    with pytest.raises(CommandError, match="public suffix"):
        call_command("whitelist", "add", "https://*.github.io")
    with connection.cursor() as cursor:  # stored before this check existed
        cursor.execute(
            "INSERT INTO whitelist_allowedorigin (pattern, enabled, note, created_at, updated_at)"
            " VALUES ('https://*.github.io', 1, '', '2026-11-01', '2026-11-01')"
        )
    snapshot = load_snapshot()
    assert not decide_headers("https://attacker.github.io", None, snapshot.index).allowed
    assert "Ignoring 1 unusable allowlist rule(s)" in caplog.text
