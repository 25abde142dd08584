"""The app's layout holds: packages by role, a pure core, no import circle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.documentation import documentation
from tests.layout import APP, cycles, graph, modules

ROOT = APP.parent
# Django's own modules, which stay at the app's root by convention.
DJANGO_MODULES = {"__init__", "admin", "apps", "checks", "conf", "models", "signals"}
MAX_OTHER_ROOT_MODULES = 12


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of what ``path`` imports, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_imports_itself_in_a_circle() -> None:
    assert cycles(graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_the_core_is_pure_python() -> None:
    impure = {
        name: sorted(imported & {"django", "socketio", "engineio", "eventlet"})
        for name, path in modules().items()
        if name.startswith("whitelist.core")
        and (imported := third_party_imports(path)) & {"django", "socketio", "engineio", "eventlet"}
    }
    assert impure == {}


def test_the_core_imports_nothing_else_of_the_app() -> None:
    outside = {
        name: sorted(target for target in targets if not target.startswith("whitelist.core"))
        for name, targets in graph().items()
        if name.startswith("whitelist.core.")
    }
    assert {name: targets for name, targets in outside.items() if targets} == {}


def test_the_root_keeps_django_modules_and_a_few_others() -> None:
    others = sorted(path.stem for path in APP.glob("*.py") if path.stem not in DJANGO_MODULES)
    assert len(others) <= MAX_OTHER_ROOT_MODULES, others


@pytest.mark.parametrize("folder", ["bench", "deploy", "harness"])
def test_tools_import_nothing_from_the_tests(folder: str) -> None:
    importing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "tests" in third_party_imports(path)
    ]
    assert importing == []


def test_the_public_surface_resolves() -> None:
    import whitelist

    for name in whitelist.__all__:
        assert getattr(whitelist, name).__name__ == name
    with pytest.raises(AttributeError):
        whitelist.NotAThing  # noqa: B018


def documented_module_paths() -> list[str]:
    """Every ``whitelist/...`` file or folder the documentation names, written out whole.

    "``whitelist/core/``: ``origins.py``, ``index.py``" names the folder's
    modules by their bare names: they are read as files in that folder.
    """
    text = documentation()
    found = []
    for item in text.split("\n* ")[1:]:
        item = item.split("\n\n")[0]
        folder = re.match(r"`(whitelist/[a-z_]+/)`", item)
        for name in re.findall(r"`([a-z_]+\.py)`", item) if folder else []:
            found.append(folder.group(1) + name)
    found += re.findall(r"`(whitelist/[a-z_/]+(?:\.py|/|\.md))`", text)
    return sorted(set(found))


def test_every_module_the_documentation_names_exists() -> None:
    paths = documented_module_paths()
    assert "whitelist/server/guarded.py" in paths
    assert "whitelist/core/origins.py" in paths
    assert [path for path in paths if not (ROOT / path).exists()] == []


def test_every_import_the_documentation_shows_works() -> None:
    text = documentation()
    statements = re.findall(r"^\s*(from whitelist[\w.]* import [\w, ]+)", text, re.M)
    assert statements
    for statement in statements:
        exec(statement, {})  # noqa: S102 - the README's own import lines


# The project's eventlet server (runsocket) may use eventlet's public API beside
# the engine layer; REACH.md lists guardsite/serving/eventlet_server.py's one private override.
EVENTLET_USERS = {
    "manage.py",
    "guardsite/serving/eventlet_server.py",
    "guardsite/serving/head_deadlines.py",  # the eventlet server's: its hub timer
    "guardsite/management/commands/runsocket.py",
}


def test_engineio_and_eventlet_are_imported_only_by_the_engine_layer() -> None:
    sources = [*APP.rglob("*.py"), *(ROOT / "guardsite").rglob("*.py"), ROOT / "manage.py"]
    importing = {
        str(path.relative_to(ROOT)): sorted(used)
        for path in sorted(sources)
        if (used := third_party_imports(path) & {"engineio", "eventlet"})
        and not path.is_relative_to(APP / "engine")
    }
    assert {path: used for path, used in importing.items() if path not in EVENTLET_USERS} == {}
    assert all(used == ["eventlet"] for used in importing.values())


# The project's gevent server, and manage.py's patching, beside the engine layer.
GEVENT_USERS = {"manage.py", "guardsite/serving/gevent_server.py"}


def test_gevent_is_imported_only_by_the_engine_layer_and_the_gevent_server() -> None:
    sources = [*APP.rglob("*.py"), *(ROOT / "guardsite").rglob("*.py"), ROOT / "manage.py"]
    importing = {
        str(path.relative_to(ROOT))
        for path in sources
        if "gevent" in third_party_imports(path) and not path.is_relative_to(APP / "engine")
    }
    assert importing == GEVENT_USERS


def test_migrations_import_only_what_exists() -> None:
    """A migration keeps the import paths it was written with; the layout keeps them working."""
    for path in sorted((APP / "migrations").glob("0*.py")):
        for module in sorted(third_party_imports(path) - {"django", "__future__", "typing"}):
            assert module == "whitelist", (path.name, module)
        source = path.read_text()
        for imported in re.findall(
            r"^\s*(?:from (whitelist[\w.]*) import|import (whitelist[\w.]*))", source, re.M
        ):
            __import__(next(name for name in imported if name))
