"""How rules read for people: Unicode names, and mixed-script look-alikes."""

from __future__ import annotations

import pytest

from whitelist.core.display import Spelling, spelling
from whitelist.core.origins import parse_rule


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("https://shop.example.com", None),
        ("http://127.0.0.1:5000", None),
        ("http://[::1]:5000", None),
        ("https://bücher.example", Spelling("https://bücher.example")),
        ("https://*.bücher.example:8443", Spelling("https://*.bücher.example:8443")),
        ("https://пример.рф", Spelling("https://пример.рф")),  # one script: fine
        ("https://pаypal.com", Spelling("https://pаypal.com", ("CYRILLIC", "LATIN"))),
        ("https://αpple.com", Spelling("https://αpple.com", ("GREEK", "LATIN"))),
    ],
)
def test_stored_rules_read_in_unicode(typed: str, expected: Spelling | None) -> None:
    assert spelling(str(parse_rule(typed))) == expected
