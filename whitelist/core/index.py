"""The allowlist as an index: whole-origin lookups whose cost does not grow with the rules.

Pure Python, no Django, like origins.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from whitelist.core.origins import Origin, Rule


class AllowlistIndex:
    """Rules indexed by ``(scheme, host, port)``: a lookup costs a few dict probes.

    Exact rules are probed with the origin's port and with "any port". Subdomain
    rules are probed for the parent domains of the origin's host, shortest first
    and only as deep as the deepest subdomain rule, so the cost grows with the
    labels of the host, never with the number of rules.

    ``scopes`` limits some rules to some namespaces; a rule without one applies
    to every namespace. ``match`` without a namespace ignores scopes (does any
    rule allow the origin somewhere?).
    """

    __slots__ = ("_exact", "_subdomains", "_bases", "_depth", "_scopes", "size")

    def __init__(
        self, rules: Iterable[Rule], scopes: Mapping[Rule, frozenset[str]] | None = None
    ) -> None:
        self._scopes = {rule: names for rule, names in (scopes or {}).items() if names}
        self._exact: dict[tuple[str, str, int | None], Rule] = {}
        self._subdomains: dict[tuple[str, str, int | None], Rule] = {}
        self._bases: set[str] = set()
        self._depth = 0
        self.size = 0
        for rule in rules:
            if rule.subdomains:
                self._subdomains.setdefault((rule.scheme, rule.host, rule.port), rule)
                self._bases.add(rule.host)
                self._depth = max(self._depth, rule.host.count(".") + 1)
            else:
                self._exact.setdefault((rule.scheme, rule.host, rule.port), rule)
            self.size += 1

    def __len__(self) -> int:
        return self.size

    def scope(self, rule: Rule) -> frozenset[str] | None:
        """The namespaces ``rule`` is limited to, or None for all."""
        return self._scopes.get(rule)

    def match(self, origin: Origin, namespace: str | None = None) -> Rule | None:
        """Return the rule that allows ``origin`` (on ``namespace``, if given), or ``None``."""
        scheme, host, port = origin
        fits = self._fits if namespace is not None and self._scopes else None
        exact = self._exact
        rule = _first(exact.get(origin), exact.get((scheme, host, None)), fits, namespace)
        if rule is not None or not self._depth or ":" in host:
            return rule
        subdomains, bases = self._subdomains, self._bases
        end = len(host)
        for _ in range(self._depth):
            end = host.rfind(".", 0, end)
            if end == -1:
                return None
            parent = host[end + 1 :]
            if parent in bases:
                rule = _first(
                    subdomains.get((scheme, parent, port)),
                    subdomains.get((scheme, parent, None)),
                    fits,
                    namespace,
                )
                if rule is not None:
                    return rule
        return None

    def _fits(self, rule: Rule, namespace: str) -> bool:
        names = self._scopes.get(rule)
        return names is None or namespace in names


def _first(
    one: Rule | None,
    other: Rule | None,
    fits: Callable[[Rule, str], bool] | None,
    namespace: str | None,
) -> Rule | None:
    """The first candidate that exists and (with ``fits``) applies to ``namespace``."""
    if fits is None or namespace is None:
        return one or other
    for rule in (one, other):
        if rule is not None and fits(rule, namespace):
            return rule
    return None


def rule_matches(rule: Rule, origin: Origin) -> bool:
    """Whether this single rule allows ``origin``, through the same lookup as a whole index."""
    return AllowlistIndex([rule]).match(origin) is rule
