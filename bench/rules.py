"""The synthetic allowlist the benchmarks use: a tenth of the rules are wildcards."""

from __future__ import annotations

ALLOWED_EXACT = "https://app1.customer1.example"
ALLOWED_WILDCARD = "https://a.b.tenant5.example.net"
DENIED = "https://evil.example.org"
DENIED_LOOKALIKE = "https://app1.customer1.example.evil.example.net"
# Rules in every measure's allowlist: a site's real list, where a lookup by scan would show.
RULES = 1_000

ORIGINS = {
    "allowed (exact)": ALLOWED_EXACT,
    "allowed (wildcard)": ALLOWED_WILDCARD,
    "denied": DENIED,
    "denied (look-alike)": DENIED_LOOKALIKE,
}


def make_rules(count: int) -> list[str]:
    """``count`` rules: ``https://*.tenantI.example.net`` for every tenth, exact otherwise."""
    return [
        f"https://*.tenant{i}.example.net"
        if i % 10 == 5
        else f"https://app{i}.customer{i % 97}.example"
        for i in range(count)
    ]
