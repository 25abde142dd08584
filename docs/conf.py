"""Sphinx configuration of Guardsite's documentation: ``make docs``, warnings as errors.

The pages are Markdown (MyST); a link to a missing page or heading is a
warning, so ``make docs`` (run by ``make test``) fails on it.
"""

project = "Guardsite"
author = "the Guardsite authors"
copyright = "2026, the Guardsite authors"  # noqa: A001 - Sphinx's name
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
# Every heading down to ### gets an anchor that links may name (page.md#heading).
myst_heading_anchors = 3
html_theme = "furo"
html_title = "Guardsite"
