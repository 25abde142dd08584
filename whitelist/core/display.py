"""How a rule reads for people: international names in Unicode, and look-alikes flagged.

Rules are stored in the ASCII form browsers send (``xn--bcher-kva.example``);
staff recognise ``bücher.example``. A label that mixes Latin, Cyrillic or Greek
letters (``pаypal.com`` with a Cyrillic ``а``) is the classic look-alike, and
is flagged where staff review rules. A name written wholly in one script that
looks like another (``аррӏе.com``, all Cyrillic) is not flagged: telling that
needs Unicode's confusables data, which this does not carry.

Text a client wrote (headers, the query, a session id) is shown ``escaped``
wherever it is written for people, in a log above all: a raw LF, CR, NEL
(U+0085) or LINE SEPARATOR starts a line that looks like the server's own, and
ESC drives the terminal that shows the log.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import idna

# Scripts whose letters look alike; mixing two of them in one label is suspicious.
CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK"})


@dataclass(frozen=True)
class Spelling:
    """A rule's host as people read it."""

    unicode: str
    mixed_scripts: tuple[str, ...] = ()


def escaped(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable written as its Python escape.

    That is C0 and DEL (``\\x1b``), C1 (``\\x85``), LINE and PARAGRAPH SEPARATOR
    (``\\u2028``), the other format and space characters that are not a plain
    space (bidi overrides, zero widths, no-break space) and lone surrogates:
    ``str.isprintable()`` says which, in C, so the usual all-printable text costs
    one pass. ``keep`` names characters left as they are (``"\\n"`` for a
    traceback's own lines). A backslash the client sent stays one backslash:
    the escapes are for reading, not for decoding back.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or char in keep else char.encode("unicode_escape").decode()
        for char in text
    )


def indented(text: str, indent: str = "  ") -> str:
    """``text`` of several lines (a traceback), each line escaped and indented.

    The lines stay lines, for people to read; but a line break that an
    exception's message brought along (a client's, maybe) never begins a line
    at the margin, where log records begin.
    """
    return "\n".join(indent + escaped(line) for line in text.split("\n"))


def spelling(pattern: str) -> Spelling | None:
    """The Unicode form of ``pattern`` if its host has punycode labels, else None."""
    scheme, _, rest = pattern.partition("://")
    host, colon, port = rest.partition(":")
    if "xn--" not in host:
        return None
    labels = []
    mixed: set[str] = set()
    for label in host.split("."):
        try:
            label = idna.decode(label) if label.startswith("xn--") else label
        except idna.IDNAError:
            return None  # stored rules always decode; anything else is shown as stored
        scripts = label_scripts(label) & CONFUSABLE_SCRIPTS
        if len(scripts) > 1:
            mixed |= scripts
        labels.append(label)
    return Spelling(f"{scheme}://{'.'.join(labels)}{colon}{port}", tuple(sorted(mixed)))


def label_scripts(label: str) -> set[str]:
    """The scripts of the letters of ``label``, by the first word of their Unicode names."""
    return {unicodedata.name(char, "?").split()[0] for char in label if char.isalpha()}
