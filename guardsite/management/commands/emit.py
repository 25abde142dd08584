"""``manage.py emit``: send a Socket.IO event to the clients of every server process."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from guardsite import messaging


class Command(BaseCommand):
    help = "Emit a Socket.IO event through GUARDSITE_MESSAGE_QUEUE to every server's clients."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("event", help="The event name.")
        parser.add_argument("--data", default="null", help="The payload, as JSON.")
        parser.add_argument("--to", help="A room or sid (default: every client).")
        parser.add_argument("--namespace", default="/", help="Default: /.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = json.loads(options["data"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--data is not JSON: {exc}") from None
        try:
            messaging.emit(options["event"], data, to=options["to"], namespace=options["namespace"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:  # the queue does not answer
            raise CommandError(f"Could not publish to the message queue: {exc}") from None
        self.stdout.write(f"Emitted {options['event']!r} on {options['namespace']}.")
