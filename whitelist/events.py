"""The events a guarded server sends to its clients: the client-side contract.

* ``permission.message``: sent once the connect is acknowledged; ``message`` is
  ``WHITELIST_WELCOME_MESSAGE``.
* ``hello.client``: right after it, naming the protocol the socket came over.
* ``permission.revoked``: sent just before the server disconnects a socket whose
  origin the rules no longer allow.
* A refused client gets no event: its ``connect_error`` carries
  ``WHITELIST_REFUSAL_MESSAGE`` and ``data = {"reason": ..., "origin": ...}``.
"""

from __future__ import annotations

from typing import Any

from .conf import conf
from .guard import Decision

WELCOME_EVENT = "permission.message"
HELLO_EVENT = "hello.client"
REVOKED_EVENT = "permission.revoked"


def refusal_data(decision: Decision) -> tuple[str, dict[str, Any]]:
    """The ``ConnectionRefusedError`` arguments: the ``connect_error`` message and data."""
    return conf.WHITELIST_REFUSAL_MESSAGE, decision.as_error_data()


def welcome_payload(decision: Decision, transport: str) -> dict[str, Any]:
    """``permission.message``: the outcome and what the server saw."""
    return {
        "message": conf.WHITELIST_WELCOME_MESSAGE,
        "origin": decision.origin,
        "rule": decision.rule,
        "transport": transport,
    }


def hello_payload(decision: Decision) -> dict[str, Any]:
    """``hello.client``: which protocol this socket really came over."""
    protocol = "wss://" if decision.secure else "ws://"
    return {
        "message": f"This is a message from the server. It was sent using the {protocol} protocol",
        "protocol": protocol,
        "secure": decision.secure,
    }


def revoked_payload(decision: Decision) -> dict[str, Any]:
    """``permission.revoked``: why the socket is being closed."""
    return {"message": conf.WHITELIST_REFUSAL_MESSAGE, **decision.as_error_data()}
