"""make's targets that serve the project's pages collect its static files first.

With ``DJANGO_DEBUG=0`` WhiteNoise's manifest storage answers every page that
names a static file with HTTP 500 until ``collectstatic`` has run: ``make
bench`` from a fresh clone ran 16 minutes and then failed at its gunicorn
section, whose readiness check fetches the page and saw only 500s.
"""

from __future__ import annotations

import re

from harness.live import ROOT

# The targets that start the project and fetch its pages (bench/servers.py and
# bench/modes.py start servers with DJANGO_DEBUG=0).
SERVING = ["run", "test", "bench", "bench-modes", "cluster"]


def recipe(target: str) -> str:
    """The commands of ``target``'s rule: its tab-indented lines."""
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(rf"^{re.escape(target)}:.*\n((?:[ \t]*\\?\n|\t.*\n)*)", makefile, re.M)
    assert rule is not None, f"no rule for {target} in the Makefile"
    return rule.group(1)


def test_every_target_that_serves_pages_collects_static_files_first() -> None:
    missing = [target for target in SERVING if "manage.py collectstatic" not in recipe(target)]
    assert missing == []
