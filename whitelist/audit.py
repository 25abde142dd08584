"""Who changed the rules: every change is a ``RuleChange`` row naming its actor.

Admin and the ``whitelist`` command say who acts (``acting_as``); a change made
any other way (a shell, a data migration, ``loaddata``) is recorded as made by
code in this process, so no change goes unrecorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import os
from collections.abc import Iterable, Iterator

from django.db import router

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("whitelist_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the rule changes made inside the block as made by ``actor``."""
    token = _actor.set(actor[:150])
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    return _actor.get() or f"code (pid {os.getpid()})"


def admin_actor(user: object) -> str:
    """How a staff member is named: ``admin: alice``."""
    get_username = getattr(user, "get_username", None)
    return f"admin: {get_username() if get_username else user}"


def command_actor(command: str) -> str:
    """How the command line is named: the operating-system user, ``cli: root (whitelist add)``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid {os.getuid()}"
    return f"cli: {user} ({command})"


def record_changes(
    action: str, patterns: Iterable[str], detail: str = "", using: str | None = None
) -> None:
    """One ``RuleChange`` per pattern, by the current actor."""
    from whitelist.records import RuleChange

    using = using or router.db_for_write(RuleChange)
    actor = current_actor()
    RuleChange.objects.using(using).bulk_create(
        RuleChange(actor=actor, action=action, pattern=pattern[:300], detail=detail[:300])
        for pattern in patterns
    )
