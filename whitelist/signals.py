"""Keep the in-process snapshot in step with the rules and settings."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.core.signals import setting_changed
from django.db import transaction
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from whitelist.audit import record_changes
from whitelist.conf import conf
from whitelist.models import AllowedOrigin, revision_bumped, rules_changed
from whitelist.rules.cache import allowlist
from whitelist.rules.changes import notify_in_transaction, publish_change
from whitelist.server.connections import connection_opened
from whitelist.server.users import servers


@receiver(pre_save, sender=AllowedOrigin, dispatch_uid="whitelist.rule_normalised")
def normalise_rule(instance: AllowedOrigin, **kwargs: Any) -> None:
    """Store the normalised form on every save, ``loaddata``'s raw saves included.

    A fixture's ``https://SHOP.example.com`` would otherwise be stored as typed:
    allowed by the server, but not found by ``whitelist remove``. A malformed
    pattern or namespace list raises ``OriginError`` or ``NamespaceError``, so
    a fixture with one does not load, and no code path stores a rule that does
    not parse.
    """
    instance.normalise()


@receiver(post_save, sender=AllowedOrigin, dispatch_uid="whitelist.rule_saved")
@receiver(post_delete, sender=AllowedOrigin, dispatch_uid="whitelist.rule_deleted")
def rule_changed(**kwargs: Any) -> None:
    rules_changed(kwargs.get("using"))


@receiver(revision_bumped, dispatch_uid="whitelist.revision_bumped")
def push_rule_change(using: str, **kwargs: Any) -> None:
    """This process reloads once the change commits; the other servers are told too.

    A PostgreSQL ``NOTIFY`` is queued in the change's transaction (sent only if
    it commits); a Redis publish waits for the commit.
    """
    notify_in_transaction(using)
    transaction.on_commit(allowlist.invalidate, using=using)
    transaction.on_commit(publish_change, using=using)


@receiver(post_save, sender=AllowedOrigin, dispatch_uid="whitelist.rule_save_recorded")
def record_save(instance: AllowedOrigin, created: bool, using: str, **kwargs: Any) -> None:
    """Who added or changed the rule (``whitelist.audit``)."""
    scope = instance.namespaces or "all namespaces"
    detail = f"{'enabled' if instance.enabled else 'disabled'}, {scope}"
    record_changes("added" if created else "changed", [instance.pattern], detail, using)


@receiver(post_delete, sender=AllowedOrigin, dispatch_uid="whitelist.rule_delete_recorded")
def record_delete(instance: AllowedOrigin, using: str, **kwargs: Any) -> None:
    record_changes("deleted", [instance.pattern], using=using)


@receiver(setting_changed, dispatch_uid="whitelist.setting_changed")
def whitelist_setting_changed(setting: str, **kwargs: Any) -> None:
    """Drop cached settings, and the snapshot when the database may differ."""
    conf.reset()
    if setting == "DATABASES":
        allowlist.invalidate()


@receiver(user_logged_out, dispatch_uid="whitelist.user_logged_out")
def user_logged_out_here(request: Any = None, **kwargs: Any) -> None:
    """A logout in this process ends the session's protected sockets now, not at the next round.

    Django sends this before it flushes the session, so the session is still
    there to read: the servers are told its key instead.
    """
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    for server in list(servers):
        server.session_ended(key)


@receiver(connection_created, dispatch_uid="whitelist.connection_created")
def remember_connection(**kwargs: Any) -> None:
    """This thread now holds a connection for the guard to close (whitelist.server.connections)."""
    connection_opened()
