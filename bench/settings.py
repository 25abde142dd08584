"""The project's settings plus the benchmark's echo event (bench/handlers.py)."""

from guardsite.settings import *  # noqa: F403

GUARDSITE_SOCKETIO_HANDLERS = [*GUARDSITE_SOCKETIO_HANDLERS, "bench.handlers"]  # noqa: F405
