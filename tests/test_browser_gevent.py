"""tests/test_browser.py's seed demo in Chromium, served by a gevent runsocket.

The same steps in the same order (allowed and refused pages, cross-origin
polling, the recipe's client, staff allowing the other port in admin,
revocation, wss://), in a file of its own: make test gives each file to one
worker. Screenshots go to a gevent/ folder beside the eventlet ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import gevent_mode, test_browser

start_server = gevent_mode.start_server  # conftest's fixture, in gevent mode


@pytest.fixture(autouse=True)
def gevent_screenshots(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(test_browser, "SCREENSHOTS", test_browser.SCREENSHOTS / "gevent")
    yield


# The admin layout at 1280 px is the same page whatever serves it.
SAME_WHATEVER_SERVES = {"test_admin_lists_fit_1280_pixels_and_paint_no_state_red"}
for _name, _value in vars(test_browser).items():
    if _name.startswith("test_") and _name not in SAME_WHATEVER_SERVES:
        globals()[_name] = _value
    elif not _name.startswith("test_"):
        globals().setdefault(_name, _value)  # its fixtures (demo, browser, page) and helpers
