# The stored payload is written in one canonical JSON text form (rooms.jsontext), so the
# sync can compare it as text. The encoder is no column change: the schema step is
# state-only (SQLite would otherwise rebuild both tables), and stored payloads are
# rewritten in the canonical form once.

from django.db import migrations, models

import rooms.jsontext

BATCH = 2000


def canonical_payloads(apps, schema_editor):
    """Rewrite each stored payload in the canonical form the sync compares against."""
    for name in ("Conference", "Room"):
        model = apps.get_model("rooms", name)
        last_pk = 0
        while True:
            rows = list(
                model.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", "raw")[:BATCH]
            )
            if not rows:
                break
            last_pk = rows[-1].pk
            model.objects.bulk_update(rows, ["raw"])


def raw_field():
    return models.JSONField(
        blank=True,
        default=dict,
        editable=False,
        encoder=rooms.jsontext.CanonicalJSONEncoder,
        verbose_name="last payload from SignalWire",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0002_admin_labels"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="conference", name="raw", field=raw_field()),
                migrations.AlterField(model_name="room", name="raw", field=raw_field()),
            ],
        ),
        migrations.RunPython(canonical_payloads, migrations.RunPython.noop, elidable=True),
    ]
