"""The project's documentation as the tests read it: the README and the pages in docs/."""

from __future__ import annotations

import re
from pathlib import Path

from harness.live import ROOT

DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """The README and every Markdown page of the documentation."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def documentation() -> str:
    """All of it, one page after another."""
    return "\n\n".join(path.read_text() for path in pages())


def section(page: str, heading: str) -> str:
    """The text under ``heading`` (as written, ``## Versions``) in ``docs/page``, up to
    the next heading of the same level or above."""
    text = (DOCS / page).read_text()
    level = heading.split(" ", 1)[0]
    body = text.split(f"\n{heading}\n", 1)[1] if not text.startswith(heading) else text
    ends = re.search(rf"\n#{{1,{len(level)}}} ", body)
    return body[: ends.start()] if ends else body
