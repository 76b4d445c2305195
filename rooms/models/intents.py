"""The outbox: edits on their way to SignalWire."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from rooms.models.spaces import space_field
from rooms.signalwire import schema


class RemoteIntent(models.Model):
    """An edit on its way to SignalWire, written before the call (the outbox).

    The service that sends the edit deletes it in the transaction that stores the answer.
    One left behind means the answer was never stored (the process died, the database
    failed); the next push replays it under its actor, so the change is never lost.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    space = space_field()
    kind = models.CharField(max_length=20)
    action = models.CharField(max_length=10, choices=Action.choices)
    object_pk = models.BigIntegerField(null=True, blank=True, db_index=True)
    name = models.CharField(max_length=schema.NAME_MAX)
    data = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    source = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.kind} {self.name}"
