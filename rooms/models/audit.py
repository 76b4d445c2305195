"""The audit trail: django-auditlog's entry with where each change came from."""

from typing import Any

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.contrib.contenttypes.models import ContentType
from django.db import models


class AuditEntryManager(LogEntryManager):
    """auditlog's manager; each new entry also names its object's remote id and parent."""

    def log_create(self, instance: Any, force_log: bool = False, **kwargs: Any) -> Any:
        """Write an entry as auditlog does, with the object's SignalWire id and parent."""
        kwargs.setdefault("object_remote_id", getattr(instance, "remote_id", "") or "")
        kwargs.setdefault("space_id", getattr(instance, "space_id", None))
        related = getattr(instance, "audit_related_object", None)
        if callable(related) and "related_object_type" not in kwargs:
            model, pk = related()
            if pk is not None:
                kwargs["related_object_type"] = ContentType.objects.get_for_model(model)
                kwargs["related_object_id"] = pk
        return super().log_create(instance, force_log=force_log, **kwargs)


class AuditEntry(AbstractLogEntry):
    """django-auditlog's entry plus where the change came from (NetBox-style change log).

    An entry about a token also names the conference or room it belongs to
    (related_object_type, related_object_id), so "everything about this room" is one
    indexed query.
    """

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin"
        SYNC = "sync", "Sync"
        PUSH = "push", "Push task"
        SHELL = "shell", "Shell or script"
        COMMAND = "command", "Management command"
        TASK = "task", "Background task"

    # Index diet: auditlog indexes content_type, object_pk, object_id and action one by one.
    # The portal's queries never use them alone (history and "about" filters go through
    # the two composite indexes below, whose first column also serves the content type's
    # cascade), and source and action are low-cardinality filters answered faster by
    # reading the timestamp index in order; each index dropped is one less B-tree per row
    # the sync writes. Kept: timestamp, cid, actor, object_remote_id and the composites.
    content_type = models.ForeignKey(
        to="contenttypes.ContentType",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name="content type",
        db_index=False,
    )
    object_pk = models.CharField(max_length=255, verbose_name="object pk")
    object_id = models.BigIntegerField(blank=True, null=True, verbose_name="object id")
    action = models.PositiveSmallIntegerField(
        choices=AbstractLogEntry.Action.choices, verbose_name="action"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SHELL)
    # Who acted when no staff user did: "sync", "push", "shell", ...
    actor_label = models.CharField(max_length=150, blank=True, default=Source.SHELL.value)
    # cid and object_remote_id are matched whole only: indexed in Meta.indexes, where
    # PostgreSQL gets no second, LIKE-only (varchar_pattern_ops) index beside each.
    cid = models.CharField(max_length=255, blank=True, null=True, verbose_name="Correlation ID")
    object_remote_id = models.CharField(max_length=64, blank=True)
    related_object_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
    )
    related_object_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    # The Space of the object it is about; none for what belongs to no Space (staff accounts).
    space = models.ForeignKey(
        "rooms.Space", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        editable=False, db_index=False,
    )

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        swappable = "AUDITLOG_LOGENTRY_MODEL"
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail entries"
        indexes = [
            models.Index(fields=["content_type", "object_pk", "-timestamp"]),
            # The change log filtered by object type, newest first, without a sort.
            models.Index(fields=["content_type", "-timestamp"], name="rooms_audit_type_time_idx"),
            # One request's or run's entries, newest first: by cid alone, the planner may
            # walk the timestamp index from the newest row back to an old run's rows.
            models.Index(fields=["cid", "-timestamp"], name="rooms_audit_cid_time_idx"),
            models.Index(fields=["object_remote_id"], name="rooms_audit_remote_id_idx"),
            # The change log of the Spaces a staff user may see, newest first.
            models.Index(fields=["space", "-timestamp"], name="rooms_audit_space_time_idx"),
            # Partial: most entries belong to no parent, so the index holds only token
            # entries, stays small, and the planner's statistics see it as selective.
            models.Index(
                fields=["related_object_type", "related_object_id", "-timestamp"],
                name="rooms_audit_related_part_idx",
                condition=models.Q(related_object_id__isnull=False),
            ),
        ]
