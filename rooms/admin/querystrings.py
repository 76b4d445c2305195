"""Crafted query strings (and action posts) on admin pages get a plain 400, never a 500.

Django's changelist turns most bad lookups into a redirect to `?e=1` and then a page that
blames "your database installation"; others (a filter given a value of the wrong type, a
regex the database cannot compile, a number too large for it) escape as a 500. This
middleware runs each ModelAdmin page asked for with a query string inside a savepoint,
renders it there, and answers a 400 that names the parameters when the query string is
what broke it. The savepoint keeps the connection usable after a failed query (PostgreSQL
aborts the whole transaction otherwise). An action post to a list whose selected ids or
action index the list cannot use gets the same 400 before the view runs.

A lookup on a secret column (rooms.secrets), directly or through a relation, gets the same
400 before the view runs: a list filtered by a secret's value would give the secret away.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import FieldError, ValidationError
from django.core.paginator import InvalidPage
from django.db import DatabaseError, router, transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from rooms.secrets import lookup_reaches_secret

logger = logging.getLogger("rooms.admin")

# The ModelAdmin views a query string can steer (filters, ordering, pages, initial data).
STEERED_VIEWS = frozenset(
    {"changelist_view", "add_view", "change_view", "history_view", "delete_view"}
)
# What a lookup, a filter value or the database raises for input it cannot use.
QUERY_ERRORS = (
    IncorrectLookupParameters,
    InvalidPage,
    FieldError,
    ValidationError,
    DatabaseError,
    ValueError,
    TypeError,
    OverflowError,
    re.error,
    # An add form's initial data comes from the query string: a value of the wrong shape
    # (text for a date) breaks its widget while the page renders.
    AttributeError,
    KeyError,
    IndexError,
)
TEMPLATE = "admin/bad_query_string.html"
# The change form carries the list's filters along in this parameter, to go back to them.
PRESERVED_FILTERS = "_changelist_filters"
# Fields every admin form posts that say nothing about what was wrong.
POST_PLUMBING = frozenset({"csrfmiddlewaretoken"})
SHOWN_PARAMETERS = 10


class AdminQueryStringMiddleware:
    """Answer 400 when a ModelAdmin page's query string makes it fail (place it last)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Pass the request on; the work happens in process_view."""
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple,
        view_kwargs: dict,
    ) -> HttpResponse | None:
        """Run a steered admin view inside a savepoint when it has a query string."""
        model_admin = getattr(view_func, "model_admin", None)
        # Outsiders are sent to the login page by the view, whatever they sent.
        if model_admin is None or not model_admin.admin_site.has_permission(request):
            return None
        if (
            request.method == "POST"
            and getattr(view_func, "__name__", "") == "changelist_view"
            and _bad_action_post(request, model_admin)
        ):
            return bad_query_string(request, model_admin, posted=True)
        if not request.GET:
            return None
        # Whatever the method: a POST to a list (an action) filters it by the query too.
        secret = secret_lookups(model_admin, request.GET)
        if secret:
            logger.warning(
                "admin %s: lookup on a secret column refused (%s)",
                request.path,
                ", ".join(Truncator(name).chars(60) for name in secret),
            )
            return bad_query_string(request, model_admin)
        if (
            request.method not in ("GET", "HEAD")
            or getattr(view_func, "__name__", "") not in STEERED_VIEWS
        ):
            return None
        if ERROR_FLAG in request.GET and view_func.__name__ == "changelist_view":
            # Django's own answer blames the database installation; say what is wrong.
            return bad_query_string(request, model_admin)
        database = router.db_for_read(model_admin.model)
        try:
            with transaction.atomic(using=database):
                response = view_func(request, *view_args, **view_kwargs)
                render = getattr(response, "render", None)
                if callable(render) and not getattr(response, "is_rendered", True):
                    # Querysets run while the template renders: inside the savepoint too.
                    response = render()
        except QUERY_ERRORS as exc:
            logger.warning(
                "admin %s: query string refused (%s: %s)",
                request.path,
                type(exc).__name__,
                Truncator(str(exc)).chars(200),
                exc_info=not isinstance(exc, IncorrectLookupParameters | DatabaseError),
            )
            return bad_query_string(request, model_admin)
        if _is_error_redirect(request, response):
            return bad_query_string(request, model_admin)
        return response


def secret_lookups(model_admin: Any, query: QueryDict) -> list[str]:
    """The query's parameters that look up a secret column of the admin's model, or beyond."""
    names = list(query)
    for preserved in query.getlist(PRESERVED_FILTERS):
        names.extend(QueryDict(preserved))
    return sorted({name for name in names if lookup_reaches_secret(model_admin.model, name)})


def _is_error_redirect(request: HttpRequest, response: HttpResponse) -> bool:
    """Tell Django's redirect to `?e=1` (its answer to lookups it could not apply)."""
    return response.status_code == 302 and response.get("Location") == (
        f"{request.path}?{ERROR_FLAG}=1"
    )


def _bad_action_post(request: HttpRequest, model_admin: Any) -> bool:
    """Tell an action post whose index or selected ids the changelist cannot use.

    Only the selection is tried, in a savepoint, before the view runs: the action itself
    may ask SignalWire, which must never happen inside a transaction.
    """
    try:
        int(request.POST.get("index", 0))
    except (TypeError, ValueError):
        return True
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    if not selected:
        return False
    database = router.db_for_read(model_admin.model)
    try:
        with transaction.atomic(using=database):
            model_admin.model._default_manager.using(database).filter(pk__in=selected).exists()
    except QUERY_ERRORS as exc:
        logger.warning(
            "admin %s: action post refused (%s: %s)",
            request.path,
            type(exc).__name__,
            Truncator(str(exc)).chars(200),
        )
        return True
    return False


def bad_query_string(
    request: HttpRequest, model_admin: Any, *, posted: bool = False
) -> HttpResponse:
    """The 400 page: which parameters were not understood, and a link without them."""
    sent = request.POST if posted else request.GET
    names = sorted({Truncator(name).chars(40) for name in sent if name not in POST_PLUMBING})
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": (
            "That form cannot be used here"
            if posted
            else "This page cannot be shown with that address"
        ),
        "opts": opts,
        "parameters": names[:SHOWN_PARAMETERS],
        "more": max(0, len(names) - SHOWN_PARAMETERS),
        "plain_url": request.path,
        "posted": posted,
        "model_name": opts.verbose_name_plural,
    }
    response = TemplateResponse(request, TEMPLATE, context, status=400)
    return response.render()
