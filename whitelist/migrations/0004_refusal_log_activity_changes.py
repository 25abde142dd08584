"""What servers report to staff: the refusal log, rule activity, and the rule change history."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("whitelist", "0003_rule_namespaces"),
    ]

    operations = [
        migrations.CreateModel(
            name="RuleChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "at",
                    models.DateTimeField(
                        db_index=True, default=django.utils.timezone.now, verbose_name="when"
                    ),
                ),
                ("actor", models.CharField(max_length=150, verbose_name="who")),
                ("action", models.CharField(max_length=20, verbose_name="action")),
                ("pattern", models.CharField(db_index=True, max_length=300, verbose_name="rule")),
                ("detail", models.CharField(blank=True, max_length=300, verbose_name="detail")),
            ],
            options={
                "verbose_name": "rule change",
                "verbose_name_plural": "rule changes",
                "ordering": ["-at", "-pk"],
            },
        ),
        migrations.CreateModel(
            name="RefusedConnect",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("origin", models.CharField(blank=True, max_length=300, verbose_name="origin")),
                ("reason", models.CharField(db_index=True, max_length=40, verbose_name="reason")),
                (
                    "namespace",
                    models.CharField(blank=True, max_length=100, verbose_name="namespace"),
                ),
                (
                    "report_only",
                    models.BooleanField(
                        default=False,
                        help_text="Admitted all the same, because WHITELIST_REPORT_ONLY was on.",
                        verbose_name="report-only",
                    ),
                ),
                ("count", models.PositiveBigIntegerField(default=0, verbose_name="attempts")),
                ("first_seen", models.DateTimeField(verbose_name="first seen")),
                ("last_seen", models.DateTimeField(db_index=True, verbose_name="last seen")),
                (
                    "last_address",
                    models.CharField(blank=True, max_length=64, verbose_name="last client address"),
                ),
                (
                    "last_user_agent",
                    models.CharField(blank=True, max_length=300, verbose_name="last user agent"),
                ),
            ],
            options={
                "verbose_name": "refused connect",
                "verbose_name_plural": "refused connects",
                "ordering": ["-last_seen"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("origin", "reason", "namespace", "report_only"),
                        name="whitelist_refusal_per_origin_reason_namespace",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RuleActivity",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("node", models.CharField(max_length=100, verbose_name="server")),
                ("pattern", models.CharField(db_index=True, max_length=300, verbose_name="rule")),
                ("open_now", models.PositiveIntegerField(default=0, verbose_name="open now")),
                (
                    "admitted_recently",
                    models.PositiveBigIntegerField(
                        default=0, verbose_name="admitted in the last hour"
                    ),
                ),
                ("reported_at", models.DateTimeField(db_index=True, verbose_name="reported")),
            ],
            options={
                "verbose_name": "rule activity",
                "verbose_name_plural": "rule activity",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("node", "pattern"), name="whitelist_activity_per_node"
                    )
                ],
            },
        ),
    ]
