# Backfill of the columns 0009 adds, in a migration of its own: on PostgreSQL, rows updated
# in the transaction that added the deferred foreign key would block its index.

from django.db import migrations

# Entries about a token name the conference or room it belongs to (was only in JSON).
PARENTS = {"conferencetoken": ("conference", "conference_id"), "issuedroomtoken": ("room", "room_id")}
BATCH = 1000


def _parent_pk(entry, key):
    extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    value = extra.get(key)
    if value is None and key == "room_id" and isinstance(entry.changes, dict):
        # An issued token's creation diff names its room: {"room": [None, "<pk>"]}.
        pair = entry.changes.get("room")
        value = pair[1] if isinstance(pair, list) and len(pair) == 2 else None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def backfill(apps, schema_editor):
    AuditEntry = apps.get_model("rooms", "AuditEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = {ct.model: ct.pk for ct in ContentType.objects.filter(app_label="rooms")}
    for child, (parent, key) in PARENTS.items():
        if child not in types or parent not in types:
            continue
        pending = []
        entries = AuditEntry.objects.filter(
            content_type_id=types[child], related_object_id__isnull=True
        ).only("pk", "additional_data", "changes")
        for entry in entries.iterator(chunk_size=BATCH):
            pk = _parent_pk(entry, key)
            if pk is None:
                continue
            entry.related_object_type_id = types[parent]
            entry.related_object_id = pk
            pending.append(entry)
            if len(pending) >= BATCH:
                AuditEntry.objects.bulk_update(pending, ["related_object_type", "related_object_id"])
                pending = []
        AuditEntry.objects.bulk_update(pending, ["related_object_type", "related_object_id"])
    # One format for token events: reveals were once written as {"access": "reveal"}.
    pending = []
    for entry in AuditEntry.objects.filter(additional_data__has_key="access").only(
        "pk", "additional_data"
    ).iterator(chunk_size=BATCH):
        extra = dict(entry.additional_data)
        extra.setdefault("event", extra.pop("access"))
        entry.additional_data = extra
        pending.append(entry)
        if len(pending) >= BATCH:
            AuditEntry.objects.bulk_update(pending, ["additional_data"])
            pending = []
    AuditEntry.objects.bulk_update(pending, ["additional_data"])


class Migration(migrations.Migration):

    dependencies = [
        ("rooms", "0009_audit_related_objects_and_token_options"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
