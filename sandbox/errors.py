"""The errors the sandbox Space answers with: a status code and a JSON body."""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """An API error the sandbox answers with a status code and a JSON body."""

    status = 500
    message = "Internal Server Error"

    def body(self) -> dict[str, Any]:
        """Return the JSON body SignalWire sends with this error."""
        return {"error": self.message}


class SandboxBadRequest(SandboxError):
    """The request body is not a JSON object (400)."""

    status = 400
    message = "Bad Request"


class SandboxNotFound(SandboxError, KeyError):
    """No object with that id (404)."""

    status = 404
    message = "Not Found"

    def __str__(self) -> str:
        return self.message


class SandboxValidationError(SandboxError, ValueError):
    """The request is invalid (422), with one entry per invalid field."""

    status = 422

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['attribute']}: {e['message']}" for e in errors))
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """Return the `{"errors": [...]}` body."""
        return {"errors": self.errors}
