"""The change log by object type, newest first, from an index; LIKE-only twins dropped.

Adds (content_type, -timestamp): the type filter then reads the newest rows of that type
in order instead of sorting every row of it. cid and object_remote_id are only matched
whole, so they move from db_index fields to Meta indexes: the database keeps its plain
index on each (object_remote_id's under a name short enough for Meta), and PostgreSQL's
second, LIKE-only varchar_pattern_ops index beside each is dropped. On SQLite, AlterField
would rebuild the audit table; the database side here only drops or renames indexes.
"""

from django.conf import settings
from django.db import migrations, models

CID_INDEX = "rooms_auditentry_cid_23f2e12c"
OLD_REMOTE_INDEX = "rooms_auditentry_object_remote_id_8e3b0e7d"
NEW_REMOTE_INDEX = "rooms_audit_remote_id_idx"
REMOTE_INDEX = models.Index(fields=["object_remote_id"], name=NEW_REMOTE_INDEX)


def _existing(schema_editor, model):
    with schema_editor.connection.cursor() as cursor:
        return set(
            schema_editor.connection.introspection.get_constraints(cursor, model._meta.db_table)
        )


def keep_plain_indexes(apps, schema_editor):
    """Drop the LIKE-only twins; give the remote-id index its Meta name."""
    model = apps.get_model("rooms", "AuditEntry")
    existing = _existing(schema_editor, model)
    for name in (f"{CID_INDEX}_like", f"{OLD_REMOTE_INDEX}_like"):
        if name in existing:
            schema_editor.execute(schema_editor._delete_index_sql(model, name))
    if OLD_REMOTE_INDEX in existing:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f'ALTER INDEX "{OLD_REMOTE_INDEX}" RENAME TO "{NEW_REMOTE_INDEX}"'
            )
        else:
            schema_editor.execute(schema_editor._delete_index_sql(model, OLD_REMOTE_INDEX))
            schema_editor.add_index(model, REMOTE_INDEX)


def restore_field_indexes(apps, schema_editor):
    """Put back the indexes the db_index fields had, twins included, for unapplying."""
    model = apps.get_model("rooms", "AuditEntry")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'ALTER INDEX "{NEW_REMOTE_INDEX}" RENAME TO "{OLD_REMOTE_INDEX}"')
    else:
        schema_editor.remove_index(model, REMOTE_INDEX)
        field = model._meta.get_field("object_remote_id")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
    like = getattr(schema_editor, "_create_like_index_sql", None)
    if like is not None:
        for name in ("cid", "object_remote_id"):
            statement = like(model, model._meta.get_field(name))
            if statement is not None:
                schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("rooms", "0013_audit_index_diet"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="cid",
                    field=models.CharField(
                        blank=True, max_length=255, null=True, verbose_name="Correlation ID"
                    ),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="object_remote_id",
                    field=models.CharField(blank=True, max_length=64),
                ),
                migrations.AddIndex(
                    model_name="auditentry",
                    index=models.Index(fields=["cid"], name=CID_INDEX),
                ),
                migrations.AddIndex(model_name="auditentry", index=REMOTE_INDEX),
            ],
            database_operations=[
                migrations.RunPython(keep_plain_indexes, restore_field_indexes),
            ],
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                fields=["content_type", "-timestamp"], name="rooms_audit_type_time_idx"
            ),
        ),
    ]
