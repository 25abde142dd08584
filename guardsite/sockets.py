"""The project's Socket.IO server: the app's ``GuardedServer`` with the configured handlers."""

from __future__ import annotations

import importlib

from django.conf import settings

from guardsite.messaging import client_manager
from whitelist import GuardedServer


def create_server() -> GuardedServer:
    """Build the server and register the handler modules named in settings.

    Each module in ``GUARDSITE_SOCKETIO_HANDLERS`` has a ``register(server)``
    function; whatever it registers is guarded without further thought.
    """
    manager = client_manager(settings.GUARDSITE_MESSAGE_QUEUE)
    server = GuardedServer(
        async_mode=settings.GUARDSITE_SOCKETIO_ASYNC_MODE, client_manager=manager
    )
    for module_name in getattr(settings, "GUARDSITE_SOCKETIO_HANDLERS", []):
        importlib.import_module(module_name).register(server)
    return server
