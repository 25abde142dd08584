"""The allowlist as an index: whole-origin lookups whose cost does not grow with the rules.

Pure Python, no Django, like origins.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from .origins import Origin, Rule


class AllowlistIndex:
    """Rules indexed by ``(scheme, host, port)``: a lookup costs a few dict probes.

    Exact rules are probed with the origin's port and with "any port". Subdomain
    rules are probed for the parent domains of the origin's host, shortest first
    and only as deep as the deepest subdomain rule, so the cost grows with the
    labels of the host, never with the number of rules.
    """

    __slots__ = ("_exact", "_subdomains", "_bases", "_depth", "size")

    def __init__(self, rules: Iterable[Rule]) -> None:
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

    def match(self, origin: Origin) -> Rule | None:
        """Return the rule that allows ``origin``, or ``None``."""
        scheme, host, port = origin
        exact = self._exact
        rule = exact.get(origin) or exact.get((scheme, host, None))
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
                rule = subdomains.get((scheme, parent, port)) or subdomains.get(
                    (scheme, parent, None)
                )
                if rule is not None:
                    return rule
        return None
