"""The rooms app: mirrored SignalWire rooms, their tokens, sync and audit."""

from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Register system checks, model hooks and audit wiring when Django starts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"
    verbose_name = "SignalWire rooms"

    def ready(self) -> None:
        from rooms import audit, checks, signals  # noqa: F401

        audit.register_models()
        signals.connect()
