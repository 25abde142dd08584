"""The background tasks of a ``GuardedServer``: rules, sessions, reports, users.

Each runs supervised (a crash is logged and the task restarted) until the
server shuts down:

* the allowlist watcher, woken by pushed rule changes (``whitelist.rules.changes``),
  which revokes open sockets the new rules refuse;
* the session sweeper (``whitelist.engine.sessions``);
* the flusher of the refusal log and rule counters (``whitelist.reporting.flushing``);
* the checker of the users on protected namespaces (``whitelist.server.users``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from whitelist.conf import conf
from whitelist.engine import hooks as engine
from whitelist.engine.sessions import SWEEP_SECONDS, EngineSessions
from whitelist.reporting.flushing import Recorder
from whitelist.rules import changes
from whitelist.rules.cache import AllowlistCache, Snapshot
from whitelist.server.handlers import close_connections
from whitelist.server.open_sockets import OpenSockets
from whitelist.server.revocation import revoke_if_refused
from whitelist.server.users import SocketUsers, check_users

logger = logging.getLogger("whitelist.server.guarded")

# A background task that crashed is started again after this pause.
RESTART_SECONDS = 1.0


class BackgroundTasks:
    """Mixed into ``GuardedServer`` (before ``socketio.Server``, whose API it uses)."""

    allowlist: AllowlistCache
    open_sockets: OpenSockets
    recorder: Recorder
    sessions: EngineSessions
    users: SocketUsers
    eio: Any
    manager: Any
    _watcher: Any
    _watcher_lock: threading.Lock
    _stopping: bool
    _tasks: dict[str, Any]
    _users_changed: Any

    # The python-socketio Server methods the tasks use.
    start_background_task: Callable[..., Any]
    sleep: Callable[[float], Any]

    def start_allowlist_watcher(self) -> None:
        """Follow rule changes made by other processes (once per server; idempotent).

        The watcher polls the revision; on PostgreSQL, or with
        ``WHITELIST_CHANGES_URL``, a listener wakes it as soon as a change is
        pushed (``whitelist.rules.changes``).
        """
        if self._watcher is not None:
            return
        with self._watcher_lock:
            if self._watcher is not None:
                return
            changed = self.eio.create_event()
            listening = changes.Listening()
            source = changes.push_source()

            def wait_for_change(seconds: float) -> None:
                if source and not listening.subscribed:  # nothing would wake it: poll fast
                    seconds = min(seconds, changes.UNPUSHED_REFRESH_INTERVAL)
                if changed.wait(seconds):
                    changed.clear()

            self._watcher = self.start_background_task(
                self._supervised,
                "allowlist watcher",
                self.allowlist.watch,
                wait_for_change,
                stop=lambda: self._stopping,
                on_change=self.recheck_open_sockets,
            )
            if source:
                self.start_background_task(
                    self._supervised,
                    "rule-change listener",
                    changes.listen,
                    changed.set,
                    self.sleep,
                    stop=lambda: self._stopping,
                    listening=listening,
                    source=source,
                )

    def _supervised(
        self, name: str, task: Callable[..., object], *args: Any, **kwargs: Any
    ) -> None:
        """Run a background task until the server stops; a crash is logged and it restarts.

        The watcher and the listener handle the failures they expect
        themselves; this is for the ones nobody expected, which would otherwise
        end the task silently and leave the last rules in force for good.
        """
        while not self._stopping:
            try:
                task(*args, **kwargs)
                return
            except Exception:
                logger.exception("The %s crashed; restarting it in %s s", name, RESTART_SECONDS)
                self.sleep(RESTART_SECONDS)

    def _start_task(self, name: str, loop: Callable[[], None]) -> None:
        """Start ``loop`` as a supervised background task, once per server."""
        if name in self._tasks:
            return
        with self._watcher_lock:
            if name not in self._tasks:
                self._tasks[name] = self.start_background_task(self._supervised, name, loop)

    def start_session_sweeper(self) -> None:
        """Close sessions past their deadlines (``whitelist.engine.sessions``); idempotent."""
        self._start_task("session sweeper", self._sweep_sessions)

    def start_reporting(self) -> None:
        """Flush the refusal log and rule counters, and check the users of protected sockets."""
        self._start_task("refusal log flusher", self._flush_reports)
        self._start_task("user checker", self._check_users)

    def _sweep_sessions(self) -> None:
        while not self._stopping:
            self.sleep(SWEEP_SECONDS)
            self.sessions.sweep()

    def _flush_reports(self) -> None:
        while not self._stopping:
            self.sleep(conf.WHITELIST_FLUSH_INTERVAL)
            self.flush_reports()

    def flush_reports(self) -> bool:
        """Write the refusal log and the rule counters now; False if the database failed."""
        open_by_rule = Counter(socket.decision.rule or "" for socket in self.open_sockets)
        close_connections()
        try:
            return self.recorder.flush(open_by_rule)
        finally:
            close_connections()

    def session_ended(self, key: str | None) -> None:
        """A logout in this process: disconnect that session's protected sockets now."""
        self.users.end_session(key)
        self._users_changed.set()

    def _check_users(self) -> None:
        while not self._stopping:
            if self._users_changed.wait(conf.WHITELIST_USER_RECHECK_INTERVAL):
                self._users_changed.clear()
            close_connections()
            try:
                check_users(self)
            finally:
                close_connections()

    def start_background_tasks(self) -> None:
        """Start the allowlist watcher, the session sweeper and the message queue's listener now.

        python-socketio starts a client manager's listener (Redis and the like)
        only at the first client connect, so until then emits from other
        processes would not reach this server's clients; servers call this as
        they start serving (runsocket, gunicorn.conf.py's post_worker_init).
        """
        self.start_allowlist_watcher()
        self.start_session_sweeper()
        self.start_reporting()
        engine.start_client_manager(self)

    def shutdown(self) -> None:
        """Stop the background tasks (after their current sleep) and python-socketio's.

        The refusal log and rule counters are flushed once more first, so that
        the counts of the last second are not lost.
        """
        self._stopping = True
        self.flush_reports()  # the last counts, before the process goes
        super().shutdown()

    def recheck_open_sockets(self, snapshot: Snapshot) -> int:
        """Disconnect open sockets whose origin the new rules no longer allow.

        A socket whose connect is not acknowledged yet is checked at its
        welcome instead, which sees that the revision changed.
        """
        revoked = 0
        for socket in self.open_sockets:
            if self.manager.is_connected(socket.sid, socket.namespace):
                revoked += revoke_if_refused(self, socket, snapshot)
        return revoked
