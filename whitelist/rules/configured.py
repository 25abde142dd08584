"""A rule as the settings allow it: ``WHITELIST_BROAD_RULES`` and ``WHITELIST_EXTRA_SCHEMES``.

Admin, the command line, fixtures, the refusal log's action and the server's
snapshot all parse rules here, so they agree on what a rule is.
"""

from __future__ import annotations

from whitelist.conf import conf
from whitelist.core.origins import Rule, parse_rule
from whitelist.core.scope import parse_scoped_rule


def parse_configured_rule(value: str) -> Rule:
    """Parse ``value`` as a rule staff may store; ``OriginError`` says why not."""
    return parse_scoped_rule(value, conf.WHITELIST_BROAD_RULES, conf.WHITELIST_EXTRA_SCHEMES)


def normalise_rule(value: str) -> Rule:
    """Parse a stored rule without judging its breadth (the checks and migrations do that)."""
    return parse_rule(value, conf.WHITELIST_EXTRA_SCHEMES)
