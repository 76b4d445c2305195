"""The sandbox Space: an in-memory stand-in for SignalWire's Video REST API."""

from sandbox.server import SandboxServer
from sandbox.state import (
    SandboxBadRequest,
    SandboxError,
    SandboxNotFound,
    SandboxSpace,
    SandboxValidationError,
)

__all__ = [
    "SandboxBadRequest",
    "SandboxError",
    "SandboxNotFound",
    "SandboxServer",
    "SandboxSpace",
    "SandboxValidationError",
]
