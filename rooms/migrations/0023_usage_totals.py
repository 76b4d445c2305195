# The usage rollup's totals levels (per day; per month and room name), filled from the
# daily rows already kept, and the index their upkeep reads the daily rows of some rooms by.

from decimal import Decimal

from django.db import migrations, models
from django.db.models import Sum
from django.db.models.functions import TruncMonth

FIGURES = ("sessions", "member_seconds", "estimated_cost", "logs", "billed_cost")
MONEY = ("estimated_cost", "billed_cost")


def _summed(row):
    return {
        name: Decimal(str(row[f"sum_{name}"] or 0)).quantize(Decimal("0.0001"))
        if name in MONEY
        else int(row[f"sum_{name}"] or 0)
        for name in FIGURES
    }


def fill_totals(apps, schema_editor):
    """Sum the daily rows per day and per month and room name, one grouped query each."""
    day_model = apps.get_model("rooms", "UsageDay")
    total_model = apps.get_model("rooms", "UsageDayTotal")
    month_model = apps.get_model("rooms", "UsageMonth")
    sums = {f"sum_{name}": Sum(name) for name in FIGURES}
    by_day = day_model.objects.order_by().values("day").annotate(**sums)
    totals = [total_model(day=row["day"], **_summed(row)) for row in by_day]
    total_model.objects.bulk_create(
        [t for t in totals if t.sessions or t.logs], batch_size=1000
    )
    by_month = (
        day_model.objects.annotate(month=TruncMonth("day"))
        .order_by()
        .values("month", "room_name")
        .annotate(**sums)
    )
    months = [
        month_model(month=row["month"], room_name=row["room_name"], **_summed(row))
        for row in by_month
    ]
    month_model.objects.bulk_create(
        [m for m in months if m.sessions or m.logs], batch_size=1000
    )


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0022_alert_delivery_claim'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageDayTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sessions', models.PositiveIntegerField(default=0)),
                ('member_seconds', models.PositiveBigIntegerField(default=0, verbose_name='member time (seconds)')),
                ('estimated_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=16, verbose_name='estimated cost (dollars)')),
                ('logs', models.PositiveIntegerField(default=0)),
                ('billed_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=16, verbose_name='billed cost (dollars)')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('day', models.DateField(verbose_name='day (UTC)')),
            ],
            options={
                'ordering': ['-day'],
            },
        ),
        migrations.CreateModel(
            name='UsageMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sessions', models.PositiveIntegerField(default=0)),
                ('member_seconds', models.PositiveBigIntegerField(default=0, verbose_name='member time (seconds)')),
                ('estimated_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=16, verbose_name='estimated cost (dollars)')),
                ('logs', models.PositiveIntegerField(default=0)),
                ('billed_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=16, verbose_name='billed cost (dollars)')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('month', models.DateField(verbose_name='month (UTC, its first day)')),
                ('room_name', models.CharField(max_length=100)),
            ],
            options={
                'ordering': ['-month', 'room_name'],
            },
        ),
        migrations.AddIndex(
            model_name='usageday',
            index=models.Index(fields=['room_name', 'day'], name='rooms_usage_room_day'),
        ),
        migrations.AddConstraint(
            model_name='usagedaytotal',
            constraint=models.UniqueConstraint(fields=('day',), name='rooms_usage_total_day'),
        ),
        migrations.AddConstraint(
            model_name='usagemonth',
            constraint=models.UniqueConstraint(fields=('month', 'room_name'), name='rooms_usage_month_room'),
        ),
        migrations.RunPython(fill_totals, migrations.RunPython.noop),
    ]
