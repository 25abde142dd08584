"""Where migration 0002 finds the rule parser: a migration keeps its import paths.

The parser lives in ``whitelist.core.origins``; Django's own advice for code a
migration references is to keep it importable for as long as the migration exists.
"""

from __future__ import annotations

from whitelist.core.origins import OriginError, parse_rule

__all__ = ["OriginError", "parse_rule"]
