"""The one WSGI application: Socket.IO and Django pages, admin and static files.

Run it with ``manage.py runsocket`` or gunicorn (gunicorn.conf.py).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guardsite.settings")

django_application = get_wsgi_application()

from guardsite.sockets import create_server  # noqa: E402 - needs Django set up
from whitelist import guarded_application  # noqa: E402

sio = create_server()
# The gate in front of Socket.IO; runsocket asks it which addresses flood.
application = gate = guarded_application(sio, django_application)
