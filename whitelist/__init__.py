"""Socket.IO for Django, admitted only from the origins staff allow in Django admin.

The public surface is what ``__all__`` lists, imported from here::

    from whitelist import GuardedServer, guarded_application, get_user

Names are resolved on first use, so that Django can import the app before its
registry is ready. Everything else is internal, laid out by role:

* ``core``: origins, the index, namespaces, scope; pure Python, no Django.
* ``rules``: the in-memory snapshot, change propagation, the decision.
* ``server``: ``GuardedServer`` on python-socketio's public API.
* ``engine``: the only package that touches python-socketio's, python-engineio's
  or eventlet's internals (``engine/REACH.md`` lists each reach).
* ``gate``: the WSGI gate in front of Socket.IO (CORS, JSONP, health, metrics).
* ``reporting``: the decision log, the refusal log and the metrics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from whitelist.gate.origin_gate import OriginGate, guarded_application
    from whitelist.jsonlog import JSONFormatter
    from whitelist.plainlog import PlainFormatter
    from whitelist.rules.decision import Decision
    from whitelist.server.guarded import GuardedServer
    from whitelist.server.users import get_user

__all__ = [
    "Decision",
    "GuardedServer",
    "JSONFormatter",
    "OriginGate",
    "PlainFormatter",
    "get_user",
    "guarded_application",
]

# Where each public name lives.
_HOMES = {
    "Decision": "whitelist.rules.decision",
    "GuardedServer": "whitelist.server.guarded",
    "JSONFormatter": "whitelist.jsonlog",
    "OriginGate": "whitelist.gate.origin_gate",
    "PlainFormatter": "whitelist.plainlog",
    "get_user": "whitelist.server.users",
    "guarded_application": "whitelist.gate.origin_gate",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'whitelist' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
