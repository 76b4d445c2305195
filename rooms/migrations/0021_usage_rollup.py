# The daily usage rollup (filled from the sessions and video logs already mirrored), the
# index its billed figures read, and the "session retention" run.

from datetime import UTC
from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, Max, Sum
from django.db.models.functions import Coalesce, TruncDate


def fill_rollup(apps, schema_editor):
    """Sum what is mirrored per UTC day and room name, one grouped query per table."""
    session_model = apps.get_model("rooms", "RoomSession")
    log_model = apps.get_model("rooms", "VideoLog")
    usage_model = apps.get_model("rooms", "UsageDay")
    rows = {}
    sessions = (
        session_model.objects.filter(start_time__isnull=False)
        .annotate(day=TruncDate("start_time", tzinfo=UTC))
        .order_by()
        .values("day", "room_name")
        .annotate(
            n=Count("id"), seconds=Coalesce(Sum("member_seconds"), 0),
            cost=Sum("cost_in_dollars"), conference=Max("conference_id"), room=Max("room_id"),
        )
    )
    for row in sessions:
        rows[(row["day"], row["room_name"])] = usage_model(
            day=row["day"], room_name=row["room_name"], sessions=row["n"],
            member_seconds=row["seconds"],
            estimated_cost=Decimal(str(row["cost"] or 0)).quantize(Decimal("0.0001")),
            conference_id=row["conference"], room_id=row["room"],
        )
    logs = (
        log_model.objects.annotate(
            day=TruncDate(Coalesce("started_at", "remote_created_at"), tzinfo=UTC)
        )
        .filter(day__isnull=False)
        .order_by()
        .values("day", "room_name")
        .annotate(n=Count("id"), charge=Sum("charge"))
    )
    for row in logs:
        key = (row["day"], row["room_name"])
        usage = rows.setdefault(key, usage_model(day=key[0], room_name=key[1]))
        usage.logs = row["n"]
        usage.billed_cost = Decimal(str(row["charge"] or 0)).quantize(Decimal("0.0001"))
    usage_model.objects.bulk_create(rows.values(), batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0020_activity_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField(verbose_name='day (UTC)')),
                ('room_name', models.CharField(max_length=100)),
                ('sessions', models.PositiveIntegerField(default=0)),
                ('member_seconds', models.PositiveBigIntegerField(default=0, verbose_name='member time (seconds)')),
                ('estimated_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=16, verbose_name='estimated cost (dollars)')),
                ('logs', models.PositiveIntegerField(default=0)),
                ('billed_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=16, verbose_name='billed cost (dollars)')),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['-day', 'room_name'],
            },
        ),
        migrations.AlterField(
            model_name='actionrun',
            name='action',
            field=models.CharField(choices=[('refresh', 'Refresh from SignalWire'), ('push', 'Push to SignalWire'), ('refresh_tokens', 'Refresh tokens from SignalWire'), ('delete', 'Delete in SignalWire and here'), ('bulk_edit', 'Edit selected'), ('restore', 'Restore to before a bulk edit'), ('retention', 'Recording retention'), ('session_retention', 'Session retention')], max_length=20),
        ),
        migrations.AddIndex(
            model_name='videolog',
            index=models.Index(fields=['room_name', 'started_at'], name='rooms_log_room_started'),
        ),
        migrations.AddField(
            model_name='usageday',
            name='conference',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='rooms.conference'),
        ),
        migrations.AddField(
            model_name='usageday',
            name='room',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='rooms.room'),
        ),
        migrations.AddConstraint(
            model_name='usageday',
            constraint=models.UniqueConstraint(fields=('day', 'room_name'), name='rooms_usage_day_room'),
        ),
        migrations.RunPython(fill_rollup, migrations.RunPython.noop),
    ]
