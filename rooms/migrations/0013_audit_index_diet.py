"""Index diet on the audit table: drop single-column indexes no portal query uses.

auditlog indexes content_type, object_pk, object_id and action one by one, and the portal
indexed source and related_object_type; the history and change-log queries go through
the composite indexes instead (rooms_audit_content_..._idx and the related one, now
partial), so each of these was only a write cost per audit row. On SQLite, AlterField
would rebuild the whole audit table once per field; here the state changes as AlterField
says while the database only drops (or, reversed, recreates) those indexes, with Django's
own schema-editor statements (PostgreSQL's varchar_pattern_ops twins included).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DIETED = ("action", "content_type", "object_id", "object_pk", "related_object_type", "source")


def drop_single_column_indexes(apps, schema_editor):
    """Drop the single-column indexes of the dieted fields, whatever their names."""
    model = apps.get_model("rooms", "AuditEntry")
    for name in DIETED:
        column = model._meta.get_field(name).column
        for index in schema_editor._constraint_names(
            model, [column], index=True, primary_key=False, unique=False
        ):
            schema_editor.execute(schema_editor._delete_index_sql(model, index))


def recreate_single_column_indexes(apps, schema_editor):
    """Recreate them as Django first made them (db_index=True), for unapplying."""
    model = apps.get_model("rooms", "AuditEntry")
    for name in DIETED:
        field = model._meta.get_field(name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
        like = getattr(schema_editor, "_create_like_index_sql", None)
        statement = like(model, field) if like else None
        if statement is not None:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("rooms", "0012_streams"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="auditentry",
            name="rooms_audit_related_idx",
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="action",
                    field=models.PositiveSmallIntegerField(
                        choices=[(0, "create"), (1, "update"), (2, "delete"), (3, "access")],
                        verbose_name="action",
                    ),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="content_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                        verbose_name="content type",
                    ),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="object_id",
                    field=models.BigIntegerField(blank=True, null=True, verbose_name="object id"),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="object_pk",
                    field=models.CharField(max_length=255, verbose_name="object pk"),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="related_object_type",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                    ),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="source",
                    field=models.CharField(
                        choices=[
                            ("admin", "Admin"),
                            ("sync", "Sync"),
                            ("push", "Push task"),
                            ("shell", "Shell or script"),
                            ("command", "Management command"),
                            ("task", "Background task"),
                        ],
                        default="shell",
                        max_length=20,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_single_column_indexes, recreate_single_column_indexes),
            ],
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                condition=models.Q(("related_object_id__isnull", False)),
                fields=["related_object_type", "related_object_id", "-timestamp"],
                name="rooms_audit_related_part_idx",
            ),
        ),
    ]
