"""The background tasks of a ``GuardedServer``: rules, sessions, reports, users.

Each runs supervised (a crash is logged and the task restarted) until the
server shuts down:

* the allowlist watcher, woken by pushed rule changes (``whitelist.rules.changes``),
  which revokes open sockets the new rules refuse;
* the session sweeper (``whitelist.engine.sessions``);
* the flusher of the refusal log and rule counters (``whitelist.reporting.flushing``);
* the checker of the users on protected namespaces (``whitelist.server.users``).

They run as the server's own background tasks (green threads under eventlet),
through python-socketio's public ``start_background_task`` and ``sleep``; under
eventlet their database statements run in native threads
(``whitelist.engine.blocking``), so that a lock held elsewhere stalls the task,
never the sockets.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from whitelist.conf import conf
from whitelist.engine.blocking import off_the_loop
from whitelist.engine.sessions import SWEEP_SECONDS
from whitelist.rules import changes
from whitelist.rules.cache import Snapshot
from whitelist.server.connections import close_connections
from whitelist.server.revocation import revoke_if_refused
from whitelist.server.users import check_users

if TYPE_CHECKING:
    from whitelist.server.guarded import GuardedServer

logger = logging.getLogger("whitelist.server.guarded")

# A background task that crashed is started again after this pause.
RESTART_SECONDS = 1.0
WATCHER = "allowlist watcher"
LISTENER = "rule-change listener"
SWEEPER = "session sweeper"
FLUSHER = "refusal log flusher"
USER_CHECKER = "user checker"


class BackgroundTasks:
    """The supervised background tasks of one server, each started at most once."""

    def __init__(self, server: GuardedServer) -> None:
        self.server = server
        self.stopping = False
        self._started: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._users_changed = server.eio.create_event()

    def started(self, name: str) -> bool:
        """Is the task called ``name`` running (or restarting)?"""
        return name in self._started

    def start_all(self) -> None:
        """The watcher, the sweeper, the flusher and the user checker, now."""
        self.start_allowlist_watcher()
        self.start_session_sweeper()
        self.start_reporting()

    def start_allowlist_watcher(self) -> None:
        """Follow rule changes made by other processes (once per server; idempotent).

        The watcher polls the revision; on PostgreSQL, or with
        ``WHITELIST_CHANGES_URL``, a listener wakes it as soon as a change is
        pushed (``whitelist.rules.changes``).
        """
        if WATCHER in self._started:
            return
        with self._lock:
            if WATCHER in self._started:
                return
            changed = self.server.eio.create_event()
            listening = changes.Listening()
            source = changes.push_source()

            def wait_for_change(seconds: float) -> None:
                if source and not listening.subscribed:  # nothing would wake it: poll fast
                    seconds = min(seconds, changes.UNPUSHED_REFRESH_INTERVAL)
                if changed.wait(seconds):
                    changed.clear()

            self._started[WATCHER] = self._start(
                WATCHER,
                self.server.allowlist.watch,
                wait_for_change,
                stop=lambda: self.stopping,
                on_change=self.recheck_open_sockets,
            )
            if source:
                self._started[LISTENER] = self._start(
                    LISTENER,
                    changes.listen,
                    changed.set,
                    self.server.sleep,
                    stop=lambda: self.stopping,
                    listening=listening,
                    source=source,
                )

    def start_session_sweeper(self) -> None:
        """Close sessions past their deadlines (``whitelist.engine.sessions``); idempotent."""
        self._start_once(SWEEPER, self._sweep_sessions)

    def start_reporting(self) -> None:
        """Flush the refusal log and rule counters, and check the users of protected sockets."""
        self._start_once(FLUSHER, self._flush_reports)
        self._start_once(USER_CHECKER, self._check_users)

    def stop(self) -> None:
        """Let every task end after its current sleep, and write the last counts first."""
        self.stopping = True
        self.flush_reports()

    def users_changed(self) -> None:
        """Check the users of protected sockets now, not at the next round (a logout here)."""
        self._users_changed.set()

    def flush_reports(self) -> bool:
        """Write the refusal log and the rule counters now; False if the database failed."""
        open_by_rule = Counter(socket.decision.rule or "" for socket in self.server.open_sockets)
        close_connections()
        try:
            with off_the_loop():
                return self.server.recorder.flush(open_by_rule)
        finally:
            close_connections()

    def recheck_open_sockets(self, snapshot: Snapshot) -> int:
        """Disconnect open sockets whose origin the new rules no longer allow.

        A socket whose connect is not acknowledged yet is checked at its
        welcome instead, which sees that the revision changed.
        """
        revoked = 0
        for socket in self.server.open_sockets:
            if self.server.manager.is_connected(socket.sid, socket.namespace):
                revoked += revoke_if_refused(self.server, socket, snapshot)
        return revoked

    def _start_once(self, name: str, loop: Callable[[], None]) -> None:
        if name in self._started:
            return
        with self._lock:
            if name not in self._started:
                self._started[name] = self._start(name, loop)

    def _start(self, name: str, task: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
        return self.server.start_background_task(self._supervised, name, task, *args, **kwargs)

    def _supervised(
        self, name: str, task: Callable[..., object], *args: Any, **kwargs: Any
    ) -> None:
        """Run a background task until the server stops; a crash is logged and it restarts.

        The watcher and the listener handle the failures they expect
        themselves; this is for the ones nobody expected, which would otherwise
        end the task silently and leave the last rules in force for good.
        """
        while not self.stopping:
            try:
                task(*args, **kwargs)
                return
            except Exception:
                logger.exception("The %s crashed; restarting it in %s s", name, RESTART_SECONDS)
                self.server.sleep(RESTART_SECONDS)

    def _sweep_sessions(self) -> None:
        while not self.stopping:
            self.server.sleep(SWEEP_SECONDS)
            self.server.sessions.sweep()

    def _flush_reports(self) -> None:
        while not self.stopping:
            self.server.sleep(conf.WHITELIST_FLUSH_INTERVAL)
            self.flush_reports()

    def _check_users(self) -> None:
        while not self.stopping:
            if self._users_changed.wait(conf.WHITELIST_USER_RECHECK_INTERVAL):
                self._users_changed.clear()
            close_connections()
            try:
                with off_the_loop():
                    check_users(self.server)
            finally:
                close_connections()
