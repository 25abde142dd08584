"""The one WSGI application: Socket.IO and Django pages, admin and static files.

Run it with ``manage.py runsocket`` or gunicorn's eventlet worker.
"""

from __future__ import annotations

import os

import socketio
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guardsite.settings")

django_application = get_wsgi_application()

from guardsite.gate import OriginGate  # noqa: E402 - needs Django set up
from guardsite.sockets import create_server  # noqa: E402

sio = create_server()
application = OriginGate(socketio.WSGIApp(sio, django_application))
