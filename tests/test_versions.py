"""One source of truth for the supported upstream releases: every copy of it agrees."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.documentation import section
from whitelist.engine.versions import SUPPORTED, Supported, parse_release

ROOT = Path(__file__).resolve().parent.parent
SOCKETIO = ("python-socketio", "python-engineio")


def requirement_lines(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def test_pyproject_requires_the_supported_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name in SOCKETIO:
        assert SUPPORTED[name].requirement in project["dependencies"]
    assert project["optional-dependencies"]["eventlet"] == [SUPPORTED["eventlet"].requirement]


def test_requirements_install_the_supported_ranges() -> None:
    lines = requirement_lines(ROOT / "requirements.txt")
    assert {supported.requirement for supported in SUPPORTED.values()} <= lines


def test_the_lowest_releases_are_what_make_test_installs() -> None:
    pins = requirement_lines(ROOT / "constraints-lowest.txt")
    assert pins == {f"{name}=={supported.lowest}" for name, supported in SUPPORTED.items()}


def test_the_documentation_states_the_supported_ranges() -> None:
    versions = " ".join(section("versions.md", "# Versions").split())  # as it reads
    for supported in SUPPORTED.values():
        assert f"`{supported.requirement}`" in versions
        assert f"{supported.distribution.removeprefix('python-')} {supported.lowest}" in versions


@pytest.mark.parametrize("supported", SUPPORTED.values(), ids=list(SUPPORTED))
def test_every_range_runs_to_the_next_major_release(supported: Supported) -> None:
    lowest, newest = parse_release(supported.lowest), parse_release(supported.newest)
    assert lowest is not None and newest is not None and lowest <= newest
    below = parse_release(supported.below + ".0")
    major = newest[0] + 1 if newest[0] else 1  # 0.x: the next major is 1
    assert below == (major, 0, 0)


def test_a_new_minor_release_installs_but_is_reported() -> None:
    socketio = SUPPORTED["python-socketio"]
    assert not socketio.is_newer_than_tested((5, 18, 9))
    assert socketio.is_newer_than_tested((5, 19, 0))
    assert re.fullmatch(r"python-socketio>=5\.14\.0,<6", socketio.requirement)
