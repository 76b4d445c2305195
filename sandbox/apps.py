"""The sandbox Space: a local stand-in for SignalWire's Video REST API."""

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Provide the `sandbox_space` command; the portal's own code never imports this app."""

    name = "sandbox"
    verbose_name = "Sandbox Space"
