"""How rules and client text read for people: Unicode names, look-alikes, escapes."""

from __future__ import annotations

import pytest

from whitelist.core.display import Spelling, escaped, indented, spelling
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


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),  # ESC: terminal control
        ("bell\x07", "bell\\x07"),
        ("a\rb\nc\td", "a\\rb\\nc\\td"),
        ("\x00\x7f", "\\x00\\x7f"),  # NUL, DEL
        ("next\x85line", "next\\x85line"),  # NEL: a line break to Unicode-aware readers
        ("\x80\x9f", "\\x80\\x9f"),  # the rest of C1
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # LINE and PARAGRAPH SEPARATOR
        ("\u202eevil", "\\u202eevil"),  # a bidi override reorders what people read
        ("\udc85", "\\udc85"),  # a lone surrogate (bytes that were not UTF-8)
        ("\U000e0041", "\\U000e0041"),  # a tag character, beyond the BMP
    ],
)
def test_control_and_format_characters_are_escaped(text: str, shown: str) -> None:
    assert escaped(text) == shown


@pytest.mark.parametrize(
    "text", ["https://bücher.example", "Привет, мир", "a\\x1b b", "", "日本語 😀 ~"]
)
def test_printable_text_is_left_as_it_is(text: str) -> None:
    assert escaped(text) is text


def test_kept_characters_stay_and_only_those() -> None:
    assert escaped("Traceback\n  line\x1b\r\n", keep="\n") == "Traceback\n  line\\x1b\\r\n"


def test_nothing_escaped_can_split_a_line() -> None:
    every = "".join(map(chr, range(0x110000)))
    assert len(escaped(every).splitlines()) == 1
    assert escaped(every).isprintable()


def test_indented_lines_stay_lines_and_none_starts_at_the_margin() -> None:
    assert indented("Traceback\n  File x\nValueError: a\x1b\rFORGED\u2028b") == (
        "  Traceback\n    File x\n  ValueError: a\\x1b\\rFORGED\\u2028b"
    )
