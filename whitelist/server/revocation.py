"""Close a socket whose origin the rules no longer allow, telling it why first."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from whitelist.rules.cache import Snapshot
from whitelist.rules.decision import Decision, admitted_by_report_only, decide_headers
from whitelist.server.events import REVOKED_EVENT, revoked_payload
from whitelist.server.open_sockets import OpenSocket

if TYPE_CHECKING:
    from whitelist.server.guarded import GuardedServer

logger = logging.getLogger(__name__)


def revoke_if_refused(server: GuardedServer, socket: OpenSocket, snapshot: Snapshot) -> bool:
    """Send ``permission.revoked`` and disconnect ``socket`` if ``snapshot`` refuses its origin."""
    origin = socket.decision.origin
    if origin is None:  # admitted without an origin, by setting
        return False
    decision = decide_headers(origin, None, snapshot.index, socket.namespace)
    if decision.allowed:
        return False
    if admitted_by_report_only(decision, socket.namespace):
        logger.info(
            "Would revoke %s on %s (report-only): %s", origin, socket.namespace, decision.detail
        )
        return False
    logger.info("Revoking %s on %s: %s", origin, socket.namespace, decision.detail)
    revoke(server, socket.namespace, socket.sid, decision)
    return True


def revoke(server: GuardedServer, namespace: str, sid: str, decision: Decision) -> None:
    """Send ``permission.revoked`` with ``decision``'s reason, then disconnect the socket."""
    try:
        payload = revoked_payload(decision)
        server.emit(REVOKED_EVENT, payload, to=sid, namespace=namespace, ignore_queue=True)
        server.disconnect(sid, namespace=namespace, ignore_queue=True)
    except Exception:  # one broken socket must not shield the others
        logger.exception("Could not revoke %s on %s", sid, namespace)
    # Out of open_sockets, it gets no more events even if the disconnect failed.
    server.open_sockets.discard(namespace, sid)
