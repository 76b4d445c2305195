"""The SignalWire client's exception family: permanent errors apart from retry-later ones.

Every error names the request (method, path), the HTTP status when there was one and the
request id SignalWire sent, so an operator can match a failure with SignalWire's logs. No
message ever carries the API token or a token value: callers may show them in admin.
"""

from __future__ import annotations


class SignalWireError(Exception):
    """Base of every failure the SignalWire client reports."""

    retryable: bool = False
    default_message = "SignalWire request failed"

    def __init__(
        self,
        message: str = "",
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.method = method
        self.path = path
        self.status = status
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        """Say what failed, on which request, with which status and request id."""
        where = " ".join(part for part in (self.method, self.path) if part)
        text = f"{where}: " if where else ""
        if self.status is not None:
            text += f"HTTP {self.status}: "
        text += self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class ConfigurationError(SignalWireError):
    """The client's settings are unusable; raised before any request is sent."""

    default_message = "the SignalWire settings are not usable"


class AuthenticationError(SignalWireError):
    """SignalWire refused the credentials (401/403)."""

    default_message = (
        "SignalWire refused the credentials; check the project ID and that the API token "
        "has the Video scope"
    )


class NotFoundError(SignalWireError):
    """The object does not exist in the Space (404)."""

    default_message = "not found in the SignalWire Space"


class ValidationError(SignalWireError):
    """SignalWire rejected the request's data (422, or 400 as a non-field error)."""

    default_message = "SignalWire rejected the request"

    def __init__(
        self,
        message: str = "",
        *,
        field_errors: dict[str, list[str]] | None = None,
        non_field_errors: list[str] | None = None,
        **kwargs: object,
    ) -> None:
        self.field_errors: dict[str, list[str]] = field_errors or {}
        self.non_field_errors: list[str] = non_field_errors or []
        if not message:
            parts = [f"{field}: {'; '.join(msgs)}" for field, msgs in self.field_errors.items()]
            parts.extend(self.non_field_errors)
            message = "; ".join(parts)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RateLimitedError(SignalWireError):
    """SignalWire still answered 429 after the retries the client allows itself."""

    retryable = True
    default_message = "SignalWire is rate limiting this project; try again later"

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs: object):
        self.retry_after = retry_after
        if not message and retry_after is not None:
            message = f"{self.default_message} (retry after {retry_after:g}s)"
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class UnavailableError(SignalWireError):
    """SignalWire could not be reached or failed (5xx, timeout, connection error)."""

    retryable = True
    default_message = "SignalWire is unavailable; try again later"

    def __init__(self, message: str = "", *, maybe_applied: bool = False, **kwargs: object):
        # True when the request may have reached SignalWire and been acted on before
        # the failure (a read timeout or a dropped connection after sending).
        self.maybe_applied = maybe_applied
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class UnexpectedResponseError(SignalWireError):
    """SignalWire answered something that is not the documented shape."""

    default_message = "SignalWire answered with an unexpected response"


class RemoteCallInTransactionError(RuntimeError):
    """A call to SignalWire was attempted while a database transaction was open.

    A programming error, not a remote failure, so it is no SignalWireError: nothing may
    catch it as "SignalWire unavailable" and keep the edit as pending. Raised before any
    request is sent, when SIGNALWIRE_REFUSE_IN_TRANSACTION is on.
    """
