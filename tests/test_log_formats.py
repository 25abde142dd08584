"""Both log formats write what clients sent escaped, whoever logged it; tracebacks stay readable."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from whitelist.jsonlog import JSONFormatter
from whitelist.plainlog import PlainFormatter

# ESC, BEL, CR, LF, NEL, LINE and PARAGRAPH SEPARATOR, DEL, a bidi override.
HOSTILE = "a\x1b[2Jb\x07c\rd\ne\x85FORGED f\u2028g\u2029h\x7fi\u202e"
SHOWN = "a\\x1b[2Jb\\x07c\\rd\\ne\\x85FORGED f\\u2028g\\u2029h\\x7fi\\u202e"
FORMAT = "%(levelname)s %(name)s: %(message)s"


def record(*args: object, exc_info: object = None, **extra: object) -> logging.LogRecord:
    """A record as any logger makes it: the client's text in the arguments."""
    made = logging.LogRecord(
        "engineio.server", logging.ERROR, __file__, 1, "Invalid session %s", args, exc_info
    )
    made.__dict__.update(extra)
    return made


def failure(message: str) -> object:
    try:
        raise ValueError(message)
    except ValueError:
        return sys.exc_info()


def test_plain_lines_show_control_characters_escaped() -> None:
    line = PlainFormatter(FORMAT).format(record(HOSTILE))
    assert line == f"ERROR engineio.server: Invalid session {SHOWN}"


def test_a_plain_traceback_keeps_its_lines_each_escaped_and_indented() -> None:
    failed = failure("bad \x1b\nFORGED line")  # a line break in an exception's message
    lines = PlainFormatter(FORMAT).format(record("x", exc_info=failed)).split("\n")
    assert lines[0] == "ERROR engineio.server: Invalid session x"
    assert lines[1] == "  Traceback (most recent call last):"
    assert lines[-2:] == ["  ValueError: bad \\x1b", "  FORGED line"]
    assert all(line.isprintable() and line.startswith("  ") for line in lines[1:])


def test_a_traceback_another_formatter_cached_raw_is_not_used() -> None:
    made = record("x", exc_info=failure(HOSTILE))
    logging.Formatter().format(made)  # another handler first: record.exc_text is raw
    assert PlainFormatter(FORMAT).format(made).split("\n")[-2:] == [
        "  ValueError: a\\x1b[2Jb\\x07c\\rd",
        "  e\\x85FORGED f\\u2028g\\u2029h\\x7fi\\u202e",
    ]


def test_a_traceback_that_came_formatted_is_escaped_and_indented() -> None:
    made = record("x")  # as logging.handlers.SocketHandler delivers one: text, no exc_info
    made.exc_text = "Traceback (most recent call last):\nValueError: a\x1b\x85b"
    assert PlainFormatter(FORMAT).format(made).split("\n")[1:] == [
        "  Traceback (most recent call last):",
        "  ValueError: a\\x1b\\x85b",
    ]


def test_the_plain_formatter_leaves_the_record_as_it_was() -> None:
    made = record(HOSTILE)
    PlainFormatter(FORMAT).format(made)
    assert (made.msg, made.args, made.getMessage()) == (
        "Invalid session %s",
        (HOSTILE,),
        f"Invalid session {HOSTILE}",
    )


def test_json_values_show_control_characters_escaped() -> None:
    decision = {"origin": HOSTILE, "address": "\x1b]0;title\x07", "namespace": "/", "rule": None}
    line = JSONFormatter().format(record(HOSTILE, decision=decision))
    entry = json.loads(line)
    assert entry["message"] == f"Invalid session {SHOWN}"
    assert (entry["origin"], entry["address"], entry["rule"]) == (SHOWN, "\\x1b]0;title\\x07", None)


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029", "\x7f", "\x9b", "\U000e0041"])
def test_a_json_line_holds_no_character_that_splits_or_drives_it(char: str) -> None:
    """json.dumps(ensure_ascii=False) leaves these raw; a value that is no string too."""

    class Opaque:
        def __str__(self) -> str:
            return f"x{char}FORGED"

    line = JSONFormatter().format(record("x", decision={"origin": Opaque()}))
    assert line.isprintable()
    assert line.splitlines() == [line]
    assert json.loads(line)["origin"] == f"x{char}FORGED"  # a JSON escape: the same text


def test_a_json_traceback_is_escaped_and_indented_line_by_line() -> None:
    entry = json.loads(JSONFormatter().format(record("x", exc_info=failure("bad\x85\nFORGED"))))
    assert entry["exception"].split("\n")[-2:] == ["  ValueError: bad\\x85", "  FORGED"]
