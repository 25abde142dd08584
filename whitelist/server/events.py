"""The events a guarded server sends to its clients: the client-side contract.

The two ``permission.*`` events carry the plain message as their first
argument, as the recipe this project grew from sends it (a page may write it
straight into the document), and the details as a second argument:

* ``permission.message``: sent once the connect is acknowledged:
  ``WHITELIST_WELCOME_MESSAGE``, then ``{"origin", "rule", "transport"}``.
* ``hello.client``: right after it, one object: ``{"message", "protocol", "secure"}``
  (the message names long-polling while the socket is on it).
* ``permission.revoked``: sent just before the server disconnects a socket whose
  origin the rules no longer allow: ``WHITELIST_REFUSAL_MESSAGE``, then
  ``{"reason", "origin"}``.
* A refused client gets no event: its ``connect_error`` carries
  ``WHITELIST_REFUSAL_MESSAGE`` and ``data = {"reason": ..., "origin": ...}``.
"""

from __future__ import annotations

from typing import Any

from whitelist.conf import conf
from whitelist.rules.decision import Decision

WELCOME_EVENT = "permission.message"
HELLO_EVENT = "hello.client"
REVOKED_EVENT = "permission.revoked"


def refusal_data(decision: Decision) -> tuple[str, dict[str, Any]]:
    """The ``ConnectionRefusedError`` arguments: the ``connect_error`` message and data."""
    return conf.WHITELIST_REFUSAL_MESSAGE, decision.as_error_data()


def welcome_payload(decision: Decision, transport: str) -> tuple[str, dict[str, Any]]:
    """``permission.message``'s arguments: the message, then what the server saw."""
    details = {"origin": decision.origin, "rule": decision.rule, "transport": transport}
    return conf.WHITELIST_WELCOME_MESSAGE, details


def hello_payload(decision: Decision, transport: str) -> dict[str, Any]:
    """``hello.client``: which protocol this socket came over, said truly for its transport.

    ``protocol`` is ``ws://`` or ``wss://``, as the recipe has it. The message is
    the recipe's over WebSocket; a client still on long-polling (every browser's
    first transport) is told so, not that a WebSocket carried it.
    """
    protocol = "wss://" if decision.secure else "ws://"
    if transport == "websocket":
        how = f"using the {protocol} protocol"
    else:
        how = f"by long-polling over {'https://' if decision.secure else 'http://'}, "
        how += f"before any upgrade to {protocol}"
    return {
        "message": f"This is a message from the server. It was sent {how}",
        "protocol": protocol,
        "secure": decision.secure,
    }


def revoked_payload(decision: Decision) -> tuple[str, dict[str, Any]]:
    """``permission.revoked``'s arguments: the message, then why the socket is closed."""
    return conf.WHITELIST_REFUSAL_MESSAGE, decision.as_error_data()
