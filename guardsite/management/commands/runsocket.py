"""``manage.py runsocket``: serve Django and Socket.IO from one eventlet process.

Unusual on purpose: eventlet must monkey-patch the standard library before
Django and the database drivers create locks and thread-locals, so the patch
happens in ``manage.py`` before Django is even imported, whenever the command
is ``runsocket``. Patching here, after Django set up, would leave green threads
sharing real thread-locals (one database connection for every socket).
"""

from __future__ import annotations

import importlib.metadata
import sys
from argparse import ArgumentParser
from typing import Any

import django
import eventlet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from guardsite.serving import (
    AddressError,
    listen,
    parse_addrport,
    raise_open_files_limit,
    serve_until_stopped,
)
from whitelist.cache import allowlist


class Command(BaseCommand):
    help = "Serve the site and its Socket.IO endpoint (eventlet) on one or more addresses."
    requires_system_checks = "__all__"

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "addrports",
            nargs="*",
            metavar="ADDRPORT",
            help="PORT, HOST:PORT or [IPV6]:PORT to listen on; several are served by one "
            "process (default 127.0.0.1:8000).",
        )
        parser.add_argument(
            "--access-log", action="store_true", help="Log every HTTP request to stderr."
        )

    def handle(self, *args: Any, addrports: list[str], access_log: bool, **options: Any) -> None:
        if not eventlet.patcher.is_monkey_patched("socket"):
            raise CommandError("Run runsocket through manage.py, which patches eventlet first.")
        try:
            endpoints = [parse_addrport(text) for text in addrports or ["127.0.0.1:8000"]]
            max_connections = settings.GUARDSITE_MAX_CONNECTIONS
            open_files = raise_open_files_limit(max_connections + 256)
            listeners = listen(endpoints, settings.GUARDSITE_LISTEN_BACKLOG)
        except AddressError as exc:
            raise CommandError(str(exc)) from None

        from guardsite.wsgi import application, sio

        rules = self._load_rules()
        sio.start_allowlist_watcher()
        write = self.stdout.write
        write(
            f"Guardsite: Django {django.get_version()}, python-socketio "
            f"{_version('python-socketio')}, eventlet {eventlet.__version__}"
        )
        write(f"Database: {connection.vendor} {connection.settings_dict['NAME']}")
        write(rules)
        for endpoint in endpoints:
            url = endpoint.url()
            write(f"  Serving {url}  (admin: {url}admin/)")
        write(
            f"Capacity: {max_connections} connections, listen backlog "
            f"{settings.GUARDSITE_LISTEN_BACKLOG}, open files limit {open_files}"
        )
        if open_files < max_connections:
            self.stderr.write(
                f"Warning: the open files limit ({open_files}) is below "
                f"GUARDSITE_MAX_CONNECTIONS ({max_connections})."
            )
        connection.close()  # the serving green threads open their own
        write("Quit with CONTROL-C.")
        sys.stdout.flush()
        serve_until_stopped(
            application,
            listeners,
            max_connections=max_connections,
            access_log=access_log,
            on_stop=lambda name: write(f"Stopped ({name})."),
        )
        sio.shutdown()

    def _load_rules(self) -> str:
        try:
            snapshot = allowlist.snapshot()
        except Exception as exc:  # the server still starts; every connect is refused
            self.stderr.write(f"Warning: cannot load the allowlist ({exc}); refusing all sockets.")
            return "Allowlist: not loaded"
        count = len(snapshot.index)
        plural = "" if count == 1 else "s"
        return f"Allowlist: {count} enabled rule{plural} (revision {snapshot.revision})"


def _version(package: str) -> str:
    return importlib.metadata.version(package)
