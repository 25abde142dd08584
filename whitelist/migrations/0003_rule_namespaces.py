"""A rule may be limited to some Socket.IO namespaces; existing rules keep every namespace."""

from django.db import migrations, models

import whitelist.models


class Migration(migrations.Migration):
    dependencies = [
        ("whitelist", "0002_normalise_patterns"),
    ]

    operations = [
        migrations.AddField(
            model_name="allowedorigin",
            name="namespaces",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Socket.IO namespaces this rule admits to, such as /chat /orders. Blank: every namespace.",
                max_length=500,
                validators=[whitelist.models.validate_namespaces],
                verbose_name="namespaces",
            ),
        ),
    ]
