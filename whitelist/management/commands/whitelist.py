"""``manage.py whitelist``: add, remove, list and check allowlist rules.

``check`` runs exactly the server's decision code (``whitelist.rules.decision``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from whitelist.audit import acting_as, command_actor
from whitelist.core.namespaces import NamespaceError, normalise_namespaces, parse_namespaces
from whitelist.core.origins import (
    OriginError,
    as_browsers_send,
    origin_of_referer,
    parse_origin_header,
)
from whitelist.models import AllowedOrigin
from whitelist.rules.cache import load_snapshot
from whitelist.rules.configured import parse_configured_rule
from whitelist.rules.decision import MALFORMED, NOT_ALLOWED, Decision, decide_headers


class Command(BaseCommand):
    help = "Manage the Socket.IO origin allowlist."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        add = actions.add_parser("add", help="Add (or re-enable) rules.")
        add.add_argument(
            "patterns",
            nargs="+",
            metavar="PATTERN",
            help="scheme://host[:port] or scheme://*.domain[:port]",
        )
        add.add_argument("--note", default="", help="Why this origin is allowed.")
        add.add_argument(
            "--namespaces",
            default=None,
            metavar="NAMESPACES",
            help='Limit the rules to these Socket.IO namespaces ("/chat /orders"); '
            '"" for every namespace. Left out: new rules admit to every namespace, '
            "existing ones keep theirs.",
        )
        add.add_argument(
            "--keep-existing",
            action="store_true",
            help="Only create missing rules; never re-enable or change an existing one.",
        )
        remove = actions.add_parser(
            "remove",
            help="Delete rules. Exit 0 if every rule was there, 1 if some were not "
            "(the others are deleted all the same).",
        )
        remove.add_argument("patterns", nargs="+", metavar="PATTERN")
        actions.add_parser("list", help="Show every rule.")
        check = actions.add_parser(
            "check", help="Would a page at ORIGIN_OR_URL be admitted? Exit 0 if so, 1 if not."
        )
        check.add_argument("value", metavar="ORIGIN_OR_URL")
        check.add_argument(
            "--namespace",
            default=None,
            help="Judge a connect to this namespace (rules limited to others do not count). "
            "Left out: is it admitted to any namespace?",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        with acting_as(command_actor(f"whitelist {action}")):
            self._handle(action, options)

    def _handle(self, action: str, options: dict[str, Any]) -> None:
        if action == "add":
            lines = add_rules(
                options["patterns"],
                options["note"],
                options["keep_existing"],
                namespaces=options["namespaces"],
            )
            self.stdout.write("\n".join(lines))
        elif action == "remove":
            lines = remove_rules(options["patterns"])
            self.stdout.write("\n".join(lines))
            if any(line.startswith(NOT_FOUND) for line in lines):
                raise SystemExit(1)
        elif action == "list":
            self.stdout.write("\n".join(list_rules()))
        else:
            value = options["value"]
            sent = as_browsers_send(value)
            namespace = options["namespace"]
            if namespace is not None and not is_namespace(namespace):
                raise CommandError(f"{namespace!r} is not a namespace: it must start with /")
            decision = check_value(sent, namespace)
            lines = describe(value, decision, sent, namespace)
            suggestion = suggested_origin(sent) if decision.reason == MALFORMED else None
            if suggestion:
                lines += f"\n  did you mean: {suggestion}"
            disabled = disabled_match(decision, namespace)
            if disabled is not None:
                lines += (
                    f"\n  a disabled rule matches: {disabled.pattern}; enable it in admin, "
                    f"or: whitelist add {disabled.pattern}"
                )
            self.stdout.write(lines)
            if not decision.allowed:
                raise SystemExit(1)


NOT_FOUND = "not found"


def _normalise_all(patterns: list[str], verb: str) -> list[str]:
    """Every pattern normalised, or a CommandError saying that none was ``verb``."""
    normalised = []
    for pattern in patterns:
        try:
            normalised.append(str(parse_configured_rule(pattern)))
        except OriginError as exc:
            hint = f" Did you mean {exc.suggestion}?" if exc.suggestion else ""
            none = "it was not" if len(patterns) == 1 else f"none of the {len(patterns)} were"
            raise CommandError(
                f"{pattern!r} is not a valid rule: {exc}.{hint} Nothing changed: {none} {verb}."
            ) from None
    return normalised


def add_rules(
    patterns: list[str],
    note: str = "",
    keep_existing: bool = False,
    namespaces: str | None = None,
) -> list[str]:
    """Create or re-enable each rule; all or nothing. Returns one line per rule.

    With ``keep_existing``, an existing rule is left as it is, even disabled (the
    demo's ``make run`` must not undo what staff decided). ``namespaces`` (None:
    unchanged, all for a new rule) limits the rules to those namespaces.
    """
    scope = None
    if namespaces is not None:
        try:
            scope = normalise_namespaces(namespaces)
        except NamespaceError as exc:
            raise CommandError(f"--namespaces: {exc}. Nothing changed.") from None
    lines = []
    with transaction.atomic():
        for pattern in _normalise_all(patterns, "added"):
            rule, created = AllowedOrigin.objects.get_or_create(
                pattern=pattern, defaults={"note": note, "namespaces": scope or ""}
            )
            if created:
                lines.append(f"added {pattern}")
                continue
            if keep_existing:
                state = "kept, enabled" if rule.enabled else "kept, disabled"
                lines.append(f"{state}: {pattern}")
                continue
            changed = (
                not rule.enabled
                or (note and note != rule.note)
                or (scope is not None and scope != rule.namespaces)
            )
            rule.enabled = True
            rule.note = note or rule.note
            rule.namespaces = rule.namespaces if scope is None else scope
            try:
                rule.full_clean()
            except ValidationError as exc:
                messages = "; ".join(exc.messages)
                raise CommandError(f"{pattern}: {messages} Nothing changed.") from None
            if changed:
                rule.save()
            lines.append(f"{'updated' if changed else 'already allowed'} {pattern}")
    return lines


def remove_rules(patterns: list[str]) -> list[str]:
    """Delete each rule; a rule that does not exist is reported ("not found")."""
    lines = []
    with transaction.atomic():
        for pattern in _normalise_all(patterns, "removed"):
            deleted, _ = AllowedOrigin.objects.filter(pattern=pattern).delete()
            lines.append(f"{'removed' if deleted else NOT_FOUND} {pattern}")
    return lines


def list_rules() -> list[str]:
    rules = AllowedOrigin.objects.all()
    if not rules:
        return ["No rules: every Socket.IO connection is refused."]
    return [
        f"{'enabled ' if rule.enabled else 'disabled'}  {rule.pattern}"
        + (f"  on {rule.namespaces}" if rule.namespaces else "")
        + (f"  # {printable(rule.note)}" if rule.note else "")
        for rule in rules
    ]


def printable(text: str) -> str:
    """``text`` with control characters escaped: a note must not drive the terminal."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def is_namespace(value: str) -> bool:
    """One namespace, as a client names it."""
    try:
        return parse_namespaces(value) == {value}
    except NamespaceError:
        return False


def check_value(value: str, namespace: str | None = None) -> Decision:
    """Judge ``value`` as the server would: an origin as ``Origin``, a URL as ``Referer``."""
    index = load_snapshot().index
    if _has_path(value):
        return decide_headers(None, value, index, namespace)
    return decide_headers(value, None, index, namespace)


def disabled_match(decision: Decision, namespace: str | None) -> AllowedOrigin | None:
    """The disabled rule that would have admitted a refused origin, if there is one."""
    if decision.reason != NOT_ALLOWED or decision.origin is None:
        return None
    return AllowedOrigin.objects.filter(enabled=False).matching(decision.origin, namespace)


def suggested_origin(value: str) -> str | None:
    """What a malformed ``value`` probably meant (an extension id under the wrong scheme)."""
    try:
        (origin_of_referer if _has_path(value) else parse_origin_header)(value)
    except OriginError as exc:
        return exc.suggestion
    return None


def _has_path(value: str) -> bool:
    scheme_and_rest = value.split("://", 1)
    return len(scheme_and_rest) == 2 and any(c in scheme_and_rest[1] for c in "/?#")


def describe(
    value: str, decision: Decision, sent: str | None = None, namespace: str | None = None
) -> str:
    verdict = "allowed" if decision.allowed else "denied"
    detail = decision.detail or f"matches {decision.rule}"
    where = f" on {namespace}" if namespace is not None else ""
    lines = [f"{verdict}: {value}{where}"]
    if sent and sent != value:
        lines.append(f"  a browser sends it as: {sent}")
    lines.append(f"  reason: {decision.reason} ({detail})")
    if decision.origin:
        lines.append(f"  origin: {decision.origin} (judged as the {decision.source} header)")
    if decision.rule:
        lines.append(f"  rule: {decision.rule}")
    return "\n".join(lines)
