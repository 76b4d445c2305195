"""One request's or run's audit entries, newest first, from one index (cid, -timestamp)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('rooms', '0014_audit_type_time_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditentry',
            name='rooms_auditentry_cid_23f2e12c',
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(fields=['cid', '-timestamp'], name='rooms_audit_cid_time_idx'),
        ),
    ]
