"""Every environment variable that settings.py or gunicorn.conf.py reads is documented."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

from harness.commands import command_on
from harness.live import ROOT, manage
from tests.documentation import documentation

READERS = {"get", "getenv", "setdefault", "env_bool", "env_list"}
# Read by a library on the project's behalf: dj_database_url.config() reads DATABASE_URL.
IMPLICIT = {"DATABASE_URL"}
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}  # Django's own, documented by Django
NAME = re.compile(r"[A-Z][A-Z0-9_]+")


def variables_read(path: Path) -> set[str]:
    """Names passed to os.environ.get/[]/setdefault, os.getenv, env_bool and env_list."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else ""
            name = name or getattr(function, "id", "")
            argument = node.args[0]
            if name in READERS and isinstance(argument, ast.Constant):
                names.add(argument.value)
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return {name for name in names if isinstance(name, str) and NAME.fullmatch(name)}


def test_every_environment_variable_is_documented() -> None:
    read = variables_read(ROOT / "guardsite" / "settings.py")
    read |= variables_read(ROOT / "gunicorn.conf.py")
    read |= IMPLICIT
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", documentation()))
    assert {"DJANGO_DEBUG", "GUARDSITE_BIND", "DJANGO_SECRET_KEY"} <= read  # the parser works
    assert sorted(read - NOT_SETTINGS - documented) == []


# Read by Django itself: createsuperuser --no-input takes the password from it.
READ_BY_DJANGO = {"DJANGO_SUPERUSER_PASSWORD"}
SETTINGS_ENV = re.compile(r"(WHITELIST|GUARDSITE|DJANGO)_[A-Z0-9_]+")


def variables_passed(path: Path) -> set[str]:
    """Environment variables passed as keyword arguments (not to override_settings)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and "override_settings" not in ast.unparse(node.func):
            names |= {k.arg for k in node.keywords if k.arg and SETTINGS_ENV.fullmatch(k.arg)}
    return names


def test_every_variable_a_test_passes_to_a_server_is_read() -> None:
    """The session tests set WHITELIST_CONNECT_TIMEOUT=1 for their server, which
    settings.py never read: it tested the 10 s default while claiming one second."""
    read = set(READ_BY_DJANGO)
    readers = ("guardsite/settings.py", "tests/live_settings.py", "gunicorn.conf.py")
    for reader in (*readers, "bench/query_settings.py"):
        read |= variables_read(ROOT / reader)
    passed = {}
    for folder in ("tests", "harness", "bench", "deploy"):
        for path in (ROOT / folder).rglob("*.py"):
            passed |= dict.fromkeys(variables_passed(path), path.name)
    assert "WHITELIST_PROXY_COUNT" in passed  # the parser works
    assert {name: path for name, path in passed.items() if name not in read} == {}


def deploy_check(database: Path, **env: str) -> str:
    secret = "x" * 20 + "-a-long-secret-key-that-only-this-test-uses-0123456789"
    result = manage(
        database, "check", "--deploy", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secret, **env
    )
    return result.stdout + result.stderr


def test_production_over_tls_passes_check_deploy_with_the_environment_alone(
    migrated_template: Path, tmp_path: Path
) -> None:
    database = shutil.copyfile(migrated_template, tmp_path / "db.sqlite3")
    assert "whitelist.W005" in deploy_check(database)  # no rule enabled yet
    command_on(database, "whitelist", "add", "https://www.example.com")
    behind_proxy = {
        "DJANGO_TRUST_X_FORWARDED_PROTO": "1",
        "WHITELIST_REQUIRE_SECURE": "1",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "DJANGO_SECURE_HSTS_PRELOAD": "1",
    }
    # The proxy is trusted for the protocol: the handshake limit must count its clients.
    assert "whitelist.W013" in deploy_check(database, **behind_proxy)
    behind_tls = deploy_check(
        database, **behind_proxy, WHITELIST_PROXY_COUNT="1", WHITELIST_TRUSTED_PROXIES="127.0.0.1"
    )
    assert "System check identified no issues" in behind_tls, behind_tls
    # Not known to be served over TLS: no HTTPS-only defaults, and check --deploy says so.
    plain = deploy_check(database)
    for warning in ("security.W008", "security.W012", "security.W016", "security.W004"):
        assert warning in plain, plain
