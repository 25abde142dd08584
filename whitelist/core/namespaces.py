"""The namespaces a rule is limited to, as staff write them: ``/chat /orders`` (blank: all).

Pure Python, no Django, like origins.py.
"""

from __future__ import annotations

import re

MAX_NAMESPACE_LENGTH = 100
# What python-socketio clients send: a slash, then no spaces, commas or control characters.
_NAMESPACE = re.compile(r"/[^\s,\x00-\x1f\x7f]*")
_SEPARATORS = re.compile(r"[\s,]+")


class NamespaceError(ValueError):
    """A namespace list that is not one."""


def parse_namespaces(text: str) -> frozenset[str]:
    """The namespaces in ``text`` (spaces or commas between them); empty means every namespace."""
    names = frozenset(name for name in _SEPARATORS.split(text.strip()) if name)
    for name in names:
        if not _NAMESPACE.fullmatch(name):
            raise NamespaceError(f"{name!r} is not a namespace: it must start with /")
        if len(name) > MAX_NAMESPACE_LENGTH:
            raise NamespaceError(f"{name[:20]!r}... is over {MAX_NAMESPACE_LENGTH} characters")
    return names


def format_namespaces(names: frozenset[str]) -> str:
    """The stored form: sorted, one space apart."""
    return " ".join(sorted(names))


def normalise_namespaces(text: str) -> str:
    """``text`` in its stored form (NamespaceError if it is no namespace list)."""
    return format_namespaces(parse_namespaces(text))
