"""The wheel alone protects a Django project that has never seen guardsite.

The wheel is built from a copy of the app, because setuptools writes ``build/``
and ``*.egg-info`` next to the sources it builds. It is installed into a fresh
virtualenv, and a second, minimal project is served from there, in processes
that cannot see this repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests

from harness.live import ROOT, free_port
from tests.clients import try_connect
from tests.gunicorn_releases import gunicorn_path

pytestmark = pytest.mark.live  # starts processes of its own

ALLOWED = "http://allowed.test:8080"
EVIL = "https://evil.test"
WELCOME = "Okay, you're cool."
REFUSAL = {
    "message": "Who invited you to this party?",
    "data": {"reason": "origin-not-allowed", "origin": EVIL},
}
TRANSPORTS = ("polling", "websocket")

SETTINGS = """\
from pathlib import Path

SECRET_KEY = "only-for-the-wheel-test"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitelist",
]
# The admin's system checks (run by migrate) insist on these.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
ROOT_URLCONF = "urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(__file__).resolve().with_name("db.sqlite3"),
    }
}
USE_TZ = True
# The README's one LOGGING entry: the app's lines (refusals among them) on the console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "whitelist": {
            "class": "whitelist.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
    },
    "handlers": {"whitelist": {"class": "logging.StreamHandler", "formatter": "whitelist"}},
    "loggers": {"whitelist": {"handlers": ["whitelist"], "level": "INFO"}},
}
"""

URLS = """\
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
"""

MANAGE = """\
import sys

from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

SERVE = """\
import sys

import django

django.setup()

from django.core.wsgi import get_wsgi_application
from werkzeug.serving import run_simple

import whitelist
from whitelist import GuardedServer, guarded_application

# python-engineio under Werkzeug can hold a long-poll that races the client's close
# until ping_interval + ping_timeout: keep that short for the test's retries.
sio = GuardedServer(async_mode="threading", ping_interval=1, ping_timeout=2)


@sio.on("echo")
def echo(sid, data):
    return data


app = guarded_application(sio, get_wsgi_application())
print(f"whitelist from {whitelist.__file__}", flush=True)
run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
"""


# Served by gunicorn's eventlet worker (gunicorn before 26), and with "gevent" in place of
# "eventlet" by gunicorn 27's gevent worker, as the README's reuse guide runs it.
WSGI = """\
from django.core.wsgi import get_wsgi_application

django_application = get_wsgi_application()

from whitelist import GuardedServer, guarded_application

sio = GuardedServer(async_mode="eventlet")


@sio.on("echo")
def echo(sid, data):
    return data


application = guarded_application(sio, django_application)
"""


def isolated_env(project: Path) -> dict[str, str]:
    """The parent's environment without anything that points at guardsite or this repo."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "WHITELIST_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="settings",
        PYTHONPATH=str(project),
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def run(*command: str | Path, env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        env=env,
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_source(tmp_path: Path) -> Path:
    """What the distributions are built from: the app and its packaging files, no more."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "LICENSE", "CHANGELOG.md", "MANIFEST.in"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "whitelist", source / "whitelist", ignore=ignore)
    return source


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the source distribution, built once by ``python -m build``."""
    folder = tmp_path_factory.mktemp("build")
    source = copy_source(folder)
    env = isolated_env(folder / "project")
    dist = folder / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, source, env=env, cwd=folder, timeout=240)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    return wheel, sdist


def write_project(project: Path) -> None:
    project.mkdir()
    for name, text in [
        ("settings.py", SETTINGS),
        ("urls.py", URLS),
        ("manage.py", MANAGE),
        ("serve.py", SERVE),
        ("wsgi.py", WSGI),
    ]:
        (project / name).write_text(text)


def wait_until_serving(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the Engine.IO handshake until the server answers (or give up after 30 s)."""
    session = requests.Session()
    session.trust_env = False  # no proxy between us and loopback
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited:\n{log.read_text()}"
        try:
            if session.get(f"{url}/socket.io/?EIO=4&transport=polling", timeout=2).ok:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer:\n{log.read_text()}")


def welcomed_after_the_rule_is_added(url: str, origin: str) -> bool:
    """Retry for up to 10 s: the server notices the new revision on its own."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        outcome, _ = try_connect(url, origin=origin, timeout=5)
        if outcome.welcome is not None:
            return outcome.welcome["message"] == WELCOME
        time.sleep(0.25)
    return False


def assert_welcomed_and_served(url: str, origin: str, transport: str) -> None:
    outcome, client = try_connect(url, origin=origin, transport=transport, keep=True)
    try:
        assert outcome.connected, outcome.error
        assert outcome.welcome is not None and outcome.welcome["message"] == WELCOME
        assert client.call("echo", {"said": transport}, timeout=10) == {"said": transport}
    finally:
        client.disconnect()


@pytest.mark.timeout(300)  # a cold pip cache means downloads from the package index
def test_wheel_protects_a_fresh_django_project(
    tmp_path: Path, distributions: tuple[Path, Path]
) -> None:
    project = tmp_path / "project"
    env = isolated_env(project)
    wheel, _ = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "whitelist/server/guarded.py" in names
    assert "whitelist/engine/REACH.md" in names
    assert not [name for name in names if name.startswith(("guardsite/", "tests/"))]

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, env=env, cwd=tmp_path)
    python = venv / "bin" / "python"
    # This pip installs into the new virtualenv (--python): bootstrapping a pip of its own
    # there, and compiling every module it installs, cost seconds of CPU and proved nothing.
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", python)
    install = ("install", "--no-compile", f"{wheel}[eventlet,gevent]", "gunicorn<26", "werkzeug")
    run(*pip, *install, env=env, cwd=tmp_path, timeout=240)
    get_purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(run(python, "-c", get_purelib, env=env, cwd=tmp_path).strip())

    write_project(project)
    run(python, "manage.py", "migrate", "--no-input", "-v0", env=env, cwd=project)
    run(python, "manage.py", "whitelist", "add", ALLOWED, env=env, cwd=project)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [python, "serve.py", str(port)],
            env=env,
            cwd=project,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(url, server, log)
        first_line = log.read_text().splitlines()[0]
        assert first_line == f"whitelist from {site_packages / 'whitelist' / '__init__.py'}"

        for transport in TRANSPORTS:
            assert_welcomed_and_served(url, ALLOWED, transport)
            refused, _ = try_connect(url, origin=EVIL, transport=transport)
            assert not refused.connected
            assert refused.error == REFUSAL

        run(python, "manage.py", "whitelist", "add", EVIL, env=env, cwd=project)
        assert welcomed_after_the_rule_is_added(url, EVIL), log.read_text()
        for transport in TRANSPORTS:
            assert_welcomed_and_served(url, EVIL, transport)
    finally:
        stop(server)
    assert f"Refused {EVIL} on / from 127.0.0.1" in log.read_text()  # the LOGGING entry
    run(python, "manage.py", "whitelist", "remove", EVIL, env=env, cwd=project)
    served_by_gunicorn_quietly(venv, project, env, tmp_path / "gunicorn.log", "eventlet")
    # The reuse guide's first choice: the gevent extra on gunicorn 27 (the test's own copy).
    (project / "wsgi.py").write_text(WSGI.replace('"eventlet"', '"gevent"'))
    env |= {"PYTHONPATH": os.pathsep.join((str(project), gunicorn_path("current")["PYTHONPATH"]))}
    served_by_gunicorn_quietly(venv, project, env, tmp_path / "gunicorn-gevent.log", "gevent")


def served_by_gunicorn_quietly(
    venv: Path, project: Path, env: dict[str, str], log: Path, worker: str
) -> None:
    """The README's gunicorn command: every WebSocket a client closes, and no notice of the
    pinned eventlet worker, leave the console to the project's own lines."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [venv / "bin" / "python", "-m", "gunicorn", "-c", "python:whitelist.gunicorn_conf"]
    command += ["-k", worker, "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:application"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, cwd=project, stdout=output, stderr=output)
    try:
        wait_until_serving(url, server, log)
        for transport in TRANSPORTS:
            assert_welcomed_and_served(url, ALLOWED, transport)
            assert try_connect(url, origin=EVIL, transport=transport)[0].error == REFUSAL
    finally:
        stop(server)
    written = log.read_text()
    assert f"Refused {EVIL} on / from 127.0.0.1" in written
    for noise in ("socket shutdown error", "deprecated", "DEPRECATED", "Traceback"):
        assert noise not in written, written


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


@pytest.mark.timeout(300)  # build's isolated environment may download setuptools
def test_the_distributions_carry_the_licence_and_pass_twine_check(
    tmp_path: Path, distributions: tuple[Path, Path]
) -> None:
    wheel, sdist = distributions
    env = isolated_env(tmp_path / "project")
    run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, env=env, cwd=tmp_path)

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with zipfile.ZipFile(wheel) as archive:
        info = f"django_socketio_whitelist-{version}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        licence = archive.read(f"{info}/licenses/LICENSE").decode()
    assert licence == (ROOT / "LICENSE").read_text()
    headers, _, description = metadata.partition("\n\n")
    assert "License-Expression: BSD-3-Clause" in headers.splitlines()
    assert description.startswith("# django-socketio-whitelist\n")
    assert "make run" not in description.split("## Settings")[0]  # the app's, not the demo's
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "whitelist/README.md"} <= names
    assert f"## {version} " in (ROOT / "CHANGELOG.md").read_text()
