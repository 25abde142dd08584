"""Normalise rules stored before every write path normalised them (loaddata, raw SQL).

A rule that does not parse is disabled and its note says why; one whose
normalised form already exists is merged into it (the enabled one wins).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def normalise(apps: Any, schema_editor: Any) -> None:
    from whitelist.origins import OriginError, parse_rule

    rules = apps.get_model("whitelist", "AllowedOrigin")
    revisions = apps.get_model("whitelist", "AllowlistRevision")
    database = schema_editor.connection.alias
    changed = False
    for rule in rules.objects.using(database).order_by("-enabled", "pk"):
        try:
            pattern = str(parse_rule(rule.pattern))
        except OriginError as exc:
            if rule.enabled:
                rule.enabled = False
                rule.note = f"disabled by migration 0002: {exc}"[:200]
                rule.save(update_fields=["enabled", "note"])
                changed = True
            continue
        if pattern == rule.pattern:
            continue
        if rules.objects.using(database).filter(pattern=pattern).exclude(pk=rule.pk).exists():
            rule.delete()  # the normalised rule is there already
        else:
            rule.pattern = pattern
            rule.save(update_fields=["pattern"])
        changed = True
    if changed:
        revision, _ = revisions.objects.using(database).get_or_create(pk=1)
        revision.number += 1
        revision.save(update_fields=["number"])


class Migration(migrations.Migration):
    dependencies = [("whitelist", "0001_initial")]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
