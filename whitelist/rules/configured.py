"""A rule as the settings allow it: ``WHITELIST_BROAD_RULES`` and ``WHITELIST_EXTRA_SCHEMES``.

Admin, the command line, fixtures, the refusal log's action and the server's
snapshot all parse rules here, so they agree on what a rule is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from whitelist.conf import conf
from whitelist.core.index import AllowlistIndex
from whitelist.core.namespaces import NamespaceError, parse_namespaces
from whitelist.core.origins import OriginError, Rule, parse_rule
from whitelist.core.scope import parse_scoped_rule


def parse_configured_rule(value: str) -> Rule:
    """Parse ``value`` as a rule staff may store; ``OriginError`` says why not."""
    return parse_scoped_rule(value, conf.WHITELIST_BROAD_RULES, conf.WHITELIST_EXTRA_SCHEMES)


def normalise_rule(value: str) -> Rule:
    """Parse a stored rule without judging its breadth (the checks and migrations do that)."""
    return parse_rule(value, conf.WHITELIST_EXTRA_SCHEMES)


@dataclass(frozen=True)
class IndexedRows:
    """Stored rules as an index: which pattern each rule came from, and the unusable ones."""

    index: AllowlistIndex
    patterns: dict[Rule, str]
    skipped: list[str]


def index_rows(
    rows: Iterable[tuple[str, str]], parse: Callable[[str], Rule] = parse_configured_rule
) -> IndexedRows:
    """``(pattern, namespaces)`` rows as one index, each rule limited to its namespaces.

    A row whose pattern or namespaces do not parse is left out and named, never
    widened to every namespace.
    """
    rules: list[Rule] = []
    scopes: dict[Rule, frozenset[str]] = {}
    patterns: dict[Rule, str] = {}
    skipped: list[str] = []
    for pattern, namespaces in rows:
        try:
            rule = parse(pattern)
            scopes[rule] = parse_namespaces(namespaces)
        except (OriginError, NamespaceError):
            skipped.append(pattern)
            continue
        rules.append(rule)
        patterns.setdefault(rule, pattern)
    return IndexedRows(AllowlistIndex(rules, scopes), patterns, skipped)
