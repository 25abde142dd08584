"""``manage.py runsocket``: serve Django and Socket.IO from one eventlet or gevent process.

Unusual on purpose: the green library (eventlet, or gevent with
``GUARDSITE_SOCKETIO_ASYNC_MODE=gevent``) must monkey-patch the standard
library before Django and the database drivers create locks and
thread-locals, so the patch happens in ``manage.py`` before Django is even
imported, whenever the command is ``runsocket``. Patching here, after Django
set up, would leave green threads sharing real thread-locals (one database
connection for every socket).
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from guardsite.serving.addresses import (
    AddressError,
    Endpoint,
    listen,
    parse_addrport,
    raise_open_files_limit,
)
from guardsite.serving.closing import ConnectionPolicy
from guardsite.tls import (
    CertificateInfo,
    TLSError,
    describe_certificate,
    ensure_dev_certificate,
    server_context,
)
from whitelist.conf import conf
from whitelist.engine.green import green_library
from whitelist.rules.cache import allowlist

# The async modes runsocket serves, each with its own green WSGI server.
GREEN_LIBRARIES = ("eventlet", "gevent")


class Command(BaseCommand):
    help = (
        "Serve the site and its Socket.IO endpoint (eventlet, or gevent with "
        "GUARDSITE_SOCKETIO_ASYNC_MODE=gevent) on one or more addresses."
    )
    requires_system_checks = "__all__"

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "addrports",
            nargs="*",
            metavar="ADDRPORT",
            help="PORT, HOST:PORT or [IPV6]:PORT to listen on, https:// in front for TLS; "
            "several are served by one process (default 127.0.0.1:8000).",
        )
        parser.add_argument("--tls", action="store_true", help="Serve every address over TLS.")
        parser.add_argument("--cert", type=Path, help="Certificate file (PEM) for TLS.")
        parser.add_argument("--key", type=Path, help="Private key file (PEM) for --cert.")
        parser.add_argument("--chain", type=Path, help="Intermediate certificates (PEM).")
        parser.add_argument(
            "--host",
            action="append",
            default=[],
            dest="hosts",
            help="Extra host name for the development certificate (repeatable).",
        )
        parser.add_argument(
            "--access-log", action="store_true", help="Log every HTTP request to stderr."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        library = settings.GUARDSITE_SOCKETIO_ASYNC_MODE
        if library not in GREEN_LIBRARIES:
            raise CommandError(
                f"runsocket serves eventlet or gevent, not {library}: the threading mode "
                "runs under gunicorn's gthread worker (GUARDSITE_WORKER=gthread)."
            )
        if green_library() != library:
            raise CommandError(
                f"Run runsocket through manage.py with GUARDSITE_SOCKETIO_ASYNC_MODE={library} "
                f"in the environment: manage.py patches {library} first."
            )
        try:
            endpoints = [
                parse_addrport(text, tls=options["tls"] or bool(options["cert"]))
                for text in options["addrports"] or ["127.0.0.1:8000"]
            ]
            certificate, context = self._tls(endpoints, options)
            max_connections = settings.GUARDSITE_MAX_CONNECTIONS
            open_files = raise_open_files_limit(max_connections + 256)
            listeners = listen(endpoints, settings.GUARDSITE_LISTEN_BACKLOG)
        except (AddressError, TLSError) as exc:
            raise CommandError(str(exc)) from None

        from guardsite.wsgi import application, gate, sio

        rules = self._load_rules()
        sio.start_background_tasks()
        write = self.stdout.write
        write(
            f"Guardsite: Django {django.get_version()}, python-socketio "
            f"{importlib.metadata.version('python-socketio')}, "
            f"{library} {importlib.metadata.version(library)}"
        )
        write(f"Database: {connection.vendor} {connection.settings_dict['NAME']}")
        write(rules)
        for endpoint in endpoints:
            write(f"  Serving {endpoint.url()}  (admin: {endpoint.url()}admin/)")
        if certificate is not None:
            self._describe_tls(certificate, given=bool(options["cert"]))
        write(
            f"Capacity: {max_connections} connections, listen backlog "
            f"{settings.GUARDSITE_LISTEN_BACKLOG}, open files limit {open_files}"
        )
        write(
            f"  At most {settings.GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS} per address "
            f"(trusted proxies: {_proxies()}); request heads within "
            f"{settings.GUARDSITE_REQUEST_HEAD_TIMEOUT:g} s"
        )
        if open_files < max_connections:
            self.stderr.write(
                f"Warning: the open files limit ({open_files}) is below "
                f"GUARDSITE_MAX_CONNECTIONS ({max_connections})."
            )
        connection.close()  # the serving green threads open their own
        # Django, admin and their imports are long-lived: take them out of the cyclic
        # garbage collector's sight, so each collection only walks per-socket objects.
        gc.collect()
        gc.freeze()

        def announce_ready() -> None:
            write("Quit with CONTROL-C.")
            sys.stdout.flush()

        # Imported once the mode is known: each server's module imports its library.
        server = importlib.import_module(f"guardsite.serving.{library}_server")
        server.serve_until_stopped(
            application,
            listeners,
            endpoints,
            tls_context=context,
            policy=ConnectionPolicy(
                max_connections=max_connections,
                socket_timeout=settings.GUARDSITE_SOCKET_TIMEOUT,
                head_timeout=settings.GUARDSITE_REQUEST_HEAD_TIMEOUT,
                max_per_address=settings.GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS,
                is_flooding=gate.is_flooding,
                is_trusted_proxy=lambda address: address in conf.WHITELIST_TRUSTED_PROXIES,
            ),
            access_log=options["access_log"],
            on_ready=announce_ready,
            on_stop=lambda name: write(f"Stopped ({name})."),
        )
        sio.shutdown()

    def _tls(
        self, endpoints: list[Endpoint], options: dict[str, Any]
    ) -> tuple[CertificateInfo | None, Any]:
        """The certificate and SSL context for the TLS endpoints, if there are any."""
        cert = options["cert"] or _path(settings.GUARDSITE_TLS_CERT)
        key = options["key"] or _path(settings.GUARDSITE_TLS_KEY)
        chain = options["chain"] or _path(settings.GUARDSITE_TLS_CHAIN)
        if bool(options["cert"]) != bool(options["key"]):
            raise TLSError("--cert and --key go together")
        if not any(endpoint.tls for endpoint in endpoints):
            return None, None
        if cert and key:
            context = server_context(cert, key, chain)  # checks the files first
            return describe_certificate(cert), context
        hosts = [*options["hosts"], *(endpoint.host for endpoint in endpoints)]
        info = ensure_dev_certificate(Path(settings.GUARDSITE_STATE_DIR) / "tls", hosts)
        return info, server_context(info.cert_path, info.key_path)

    def _describe_tls(self, info: CertificateInfo, *, given: bool) -> None:
        write = self.stdout.write
        if given:
            write(f"TLS certificate: {info.cert_path}")
        else:
            state = "new" if info.created else "reused"
            write(f"TLS development certificate ({state}): {info.cert_path}")
        write(f"  SHA-256 fingerprint: {info.fingerprint}")
        write(f"  Expires: {info.not_after:%Y-%m-%d %H:%M} UTC; covers {', '.join(info.hosts)}")
        if not given:
            write(
                "  To trust it, import that file in your browser (Chrome: Settings > Privacy "
                "and security > Security > Manage certificates > Authorities > Import); "
                "python-socketio's client takes it as its http_session's verify "
                "(docs/clients.md: Connecting from Python)."
            )

    def _load_rules(self) -> str:
        try:
            snapshot = allowlist.snapshot()
        except Exception as exc:  # the server still starts; every connect is refused
            self.stderr.write(f"Warning: cannot load the allowlist ({exc}); refusing all sockets.")
            return "Allowlist: not loaded"
        count = len(snapshot.index)
        plural = "" if count == 1 else "s"
        return f"Allowlist: {count} enabled rule{plural} (revision {snapshot.revision})"


def _proxies() -> str:
    networks = conf.WHITELIST_TRUSTED_PROXIES.networks
    return ", ".join(str(network) for network in networks) or "none"


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
