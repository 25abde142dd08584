#!/usr/bin/env python
"""Django's command-line utility for Guardsite."""

from __future__ import annotations

import os
import sys
import warnings


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guardsite.settings")
    if sys.argv[1:2] == ["runsocket"]:
        # The green library must patch the standard library before Django creates
        # its thread-locals and locks; see guardsite/management/commands/runsocket.py.
        if os.environ.get("GUARDSITE_SOCKETIO_ASYNC_MODE") == "gevent":
            # As in gunicorn.conf.py: no spawning stack kept for every greenlet.
            os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")
            try:
                from gevent import monkey
            except ImportError:
                sys.exit(
                    "GUARDSITE_SOCKETIO_ASYNC_MODE=gevent needs gevent: "
                    "pip install 'gevent>=26.9,<27' (requirements.txt has it)"
                )
            monkey.patch_all()
        else:
            # Its deprecation notice is known: the stack is pinned on purpose.
            warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
            import eventlet

            eventlet.monkey_patch()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
