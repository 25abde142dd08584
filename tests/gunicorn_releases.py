"""The two gunicorn releases the tests run: the pinned one (<26, with eventlet) and the newest."""

from __future__ import annotations

import pytest

from harness.live import ROOT

# make test installs the newest gunicorn here, beside the pinned one (Makefile).
CURRENT_GUNICORN = ROOT / ".venv" / "gunicorn-current"


def gunicorn_path(release: str) -> dict[str, str]:
    """The environment that runs the pinned gunicorn or the newest (27: gthread and gevent)."""
    if release == "pinned":
        return {}
    if not (CURRENT_GUNICORN / "gunicorn").is_dir():
        pytest.skip("run make test to install the newest gunicorn")
    return {"PYTHONPATH": str(CURRENT_GUNICORN)}
