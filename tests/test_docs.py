"""The README's links lead somewhere: files that exist, headings that exist.

Sphinx checks the links between the pages of docs/ (``make docs``, warnings as
errors); the README is no page of it, so its links are checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.live import ROOT

LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """A heading's anchor as GitHub and MyST write it: lower case, punctuation out."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # "# comment" in code
    return {anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def local_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text()) if "://" not in target]


def test_the_readme_links_to_pages_and_headings_that_exist() -> None:
    readme = ROOT / "README.md"
    links = local_links(readme)
    assert "docs/index.md" in links and "docs/deployment.md" in links
    broken = []
    for link in links:
        path, _, heading = link.partition("#")
        target = (readme.parent / path).resolve() if path else readme
        if not target.exists() or (heading and heading not in anchors(target)):
            broken.append(link)
    assert broken == []


def test_a_heading_anchor_is_written_as_the_renderers_write_it() -> None:
    assert anchor("Rolling out an allowlist: report-only") == "rolling-out-an-allowlist-report-only"
    assert anchor("nginx, sticky sessions and TLS") == "nginx-sticky-sessions-and-tls"
