"""Request middleware: staff requests under the admin run inside an audit context."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from rooms.audit import Source, audit_context, new_correlation_id

REQUEST_ID_HEADER = "X-Request-Id"


class AuditRequestMiddleware:
    """Attribute a staff admin request's changes to its user under one new request id.

    Goes after AuthenticationMiddleware. The id is made here, never taken from the
    client, so no one can graft their entries onto another request; the response tells
    it back in the X-Request-Id header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._audited(request):
            return self.get_response(request)
        request_id = new_correlation_id()
        with audit_context(
            source=Source.ADMIN,
            actor=request.user,
            correlation_id=request_id,
            remote_addr=request.META.get("REMOTE_ADDR") or None,
        ):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    @staticmethod
    def _audited(request: HttpRequest) -> bool:
        """Tell whether the request is an authenticated staff user's request to the admin."""
        prefix = "/" + settings.ADMIN_URL.lstrip("/")
        if not request.path_info.startswith(prefix):
            return False
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and user.is_staff)
