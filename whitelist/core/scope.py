"""Rules too broad to mean what staff think: wildcards over public suffixes, unspecified hosts.

``https://*.github.io`` admits every GitHub Pages site, ``https://*.co.uk``
every British company, ``http://*.nip.io:*`` any address an attacker names.
A wildcard is refused when a public suffix (the Public Suffix List's ICANN and
private sections, from the ``publicsuffixlist`` package) lies at or below its
domain: ``*.amazonaws.com`` covers ``s3.amazonaws.com``, under which anyone
can name a bucket. So is a wildcard over a wildcard-DNS service, and the
unspecified address (``0.0.0.0``, ``::``).
A rule staff really mean is listed, normalised, in ``WHITELIST_BROAD_RULES``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Collection

import idna
import publicsuffixlist
from publicsuffixlist import PublicSuffixList

from whitelist.core.origins import OriginError, Rule, parse_rule

# Not public suffixes, but any name under them resolves to the address it spells,
# so anyone can serve a page there. (Not a suffix list: three services by name.)
WILDCARD_DNS_SERVICES = frozenset({"nip.io", "sslip.io", "xip.io"})
# Only ever the machine itself.
LOOPBACK_NAMES = frozenset({"localhost"})


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def too_broad(rule: Rule) -> str | None:
    """Why ``rule`` would admit sites nobody chose, or None."""
    try:
        if ipaddress.ip_address(rule.host).is_unspecified:
            return f"{rule.host} is the unspecified address, not a host a page comes from"
    except ValueError:
        pass
    if not rule.subdomains or rule.host in LOOPBACK_NAMES:
        return None
    if rule.host in WILDCARD_DNS_SERVICES:
        return f"{rule.host} resolves any name to the address it spells: anyone can serve there"
    if _suffixes().is_public(rule.host):
        return f"{rule.host} is a public suffix: *.{rule.host} admits every site under it"
    below = _suffixes_below().get(rule.host)
    if below is not None:
        return (
            f"{below} is a public suffix under {rule.host}: *.{rule.host} admits every "
            f"site under {below}"
        )
    return None


@functools.cache
def _suffixes_below() -> dict[str, str]:
    """Each domain that has a public suffix below it, and one such suffix (the shortest).

    Read from the list the ``publicsuffixlist`` package bundles (``PSLFILE``), in
    the form rules are stored in: lower case, international names as punycode.
    """
    found: dict[str, str] = {}
    with open(publicsuffixlist.PSLFILE, encoding="utf-8") as listing:
        for line in listing:
            entry = line.split()[0] if line.split() else ""
            if not entry or entry.startswith(("//", "!")):
                continue
            suffix = _ascii(entry.removeprefix("*."))
            labels = suffix.split(".") if suffix else []
            for depth in range(1, len(labels)):
                above = ".".join(labels[depth:])
                if above not in found or len(suffix) < len(found[above]):
                    found[above] = suffix
    return found


def _ascii(name: str) -> str | None:
    """``name`` as rules store it; None if it cannot be written in punycode."""
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:
            return name.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None


def parse_scoped_rule(
    value: str, broad_rules: Collection[str], extra_schemes: Collection[str] = ()
) -> Rule:
    """``parse_rule``, refusing rules that are too broad unless ``broad_rules`` lists them.

    ``broad_rules`` is ``WHITELIST_BROAD_RULES``, normalised (``conf``), and
    ``extra_schemes`` is ``WHITELIST_EXTRA_SCHEMES``.
    """
    rule = parse_rule(value, extra_schemes)
    reason = too_broad(rule)
    if reason and str(rule) not in broad_rules:
        raise OriginError(f"{reason} (list it in WHITELIST_BROAD_RULES if you mean it)")
    return rule
