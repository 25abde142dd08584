"""How a rule reads for people: international names in Unicode, and look-alikes flagged.

Rules are stored in the ASCII form browsers send (``xn--bcher-kva.example``);
staff recognise ``bücher.example``. A label that mixes Latin, Cyrillic or Greek
letters (``pаypal.com`` with a Cyrillic ``а``) is the classic look-alike, and
is flagged where staff review rules. A name written wholly in one script that
looks like another (``аррӏе.com``, all Cyrillic) is not flagged: telling that
needs Unicode's confusables data, which this does not carry.
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
