"""Project settings plus namespaces that forget the guard, for the live-server tests."""

from guardsite.settings import *  # noqa: F403

GUARDSITE_SOCKETIO_HANDLERS = [*GUARDSITE_SOCKETIO_HANDLERS, "tests.late_namespaces"]  # noqa: F405
