"""Access per Space: every admin page shows and acts on the rows of the viewer's Spaces only.

Superusers see every Space; other staff the Spaces granted to them or their groups. The
narrowing lives here, in the one mixin every ModelAdmin of the app puts first in its bases:
its `get_queryset` is what lists, filters, search, change, history and delete pages,
actions (select-all included) and the custom views read, so a row of another Space is
simply not found (404, as for a row that does not exist, so its existence is not told).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from rooms.models import Space
from rooms.selectors.spaces import in_spaces, one_space, spaces_of

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

# The Spaces each request's user may see, read once per request and gone with it.
_seen: weakref.WeakKeyDictionary[HttpRequest, tuple[list[Space] | None, list[Space]]] = (
    weakref.WeakKeyDictionary()
)
ACTION_ACROSS_SPACES = (
    "The selected rows belong to more than one Space; nothing was done. Filter the list "
    "by Space and act on one Space at a time."
)


def _spaces(request: HttpRequest) -> tuple[list[Space] | None, list[Space]]:
    found = _seen.get(request)
    if found is None:
        spaces = spaces_of(request.user)
        found = (spaces, list(Space.objects.all()) if spaces is None else spaces)
        _seen[request] = found
    return found


def request_spaces(request: HttpRequest) -> list[Space] | None:
    """Return the Spaces the request's user may see (None: every Space), read once a request."""
    return _spaces(request)[0]


def visible_spaces(request: HttpRequest) -> list[Space]:
    """Return the Spaces the request's user may see, as a list."""
    return _spaces(request)[1]


def sees_several_spaces(request: HttpRequest) -> bool:
    """Tell whether the user sees more than one Space (lists then name each row's Space)."""
    return len(visible_spaces(request)) > 1


def has_space(model: type[Model]) -> bool:
    """Tell whether a model's rows belong to a Space."""
    return any(field.name == "space" for field in model._meta.concrete_fields)


def narrow(request: HttpRequest, queryset: QuerySet, *, portal_wide: bool = False) -> QuerySet:
    """Keep the rows of the user's Spaces (and, when `portal_wide`, the rows of none)."""
    if not has_space(queryset.model):
        return queryset
    return in_spaces(queryset, request_spaces(request), portal_wide=portal_wide)


class SpaceFilter(admin.SimpleListFilter):
    """Filter a list by Space, offering only the Spaces the user may see."""

    title = "Space"
    parameter_name = "space"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer the user's Spaces by name."""
        return [(str(space.pk), space.name) for space in visible_spaces(request)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the rows of the chosen Space."""
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(space_id=int(value))


def _space_column(request: HttpRequest) -> Callable[[Any], str]:
    """A list column naming each row's Space, from the Spaces read once for the request."""
    names = {space.pk: space.name for space in visible_spaces(request)}

    @admin.display(description="Space", ordering="space__name")
    def space(obj: Any) -> str:
        return names.get(obj.space_id, "—") if obj.space_id else "—"

    return space


def one_space_action(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run an action only on rows of one Space: each run belongs to the Space of its rows."""

    @wraps(func)
    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> Any:
        if queryset.exists() and one_space(queryset) is None:
            modeladmin.message_user(request, ACTION_ACROSS_SPACES, messages.ERROR)
            return None
        return func(modeladmin, request, queryset)

    return action


class SpaceScopedMixin(_ModelAdmin):
    """Narrow an admin to the viewer's Spaces; put it first in the bases, before ModelAdmin.

    `portal_wide_rows`: rows with no Space (portal-wide alerts) are shown to every viewer;
    otherwise such rows (change log entries of no Space) are for superusers alone.
    """

    portal_wide_rows = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """The rows of the user's Spaces only."""
        return narrow(request, super().get_queryset(request), portal_wide=self.portal_wide_rows)

    def get_list_display(self, request: HttpRequest) -> Any:
        """Name each row's Space when the user sees more than one."""
        shown = list(super().get_list_display(request))
        if has_space(self.model) and sees_several_spaces(request):
            shown.insert(1, _space_column(request))
        return shown

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Offer a Space filter when the user sees more than one."""
        filters = list(super().get_list_filter(request))
        if has_space(self.model) and sees_several_spaces(request):
            filters.insert(0, SpaceFilter)
        return filters

    def get_actions(self, request: HttpRequest) -> dict:
        """Refuse any action on a selection that spans Spaces."""
        actions: dict[str, Any] = dict(super().get_actions(request))
        if not has_space(self.model) or self.portal_wide_rows:
            return actions
        return {
            name: (one_space_action(func), action_name, description)
            for name, (func, action_name, description) in actions.items()
        }

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Offer only the user's Spaces, and only rows of them, in any foreign key."""
        related = db_field.related_model
        if related is Space:
            mine = visible_spaces(request)
            kwargs["queryset"] = Space.objects.filter(pk__in=[space.pk for space in mine])
            if len(mine) == 1:
                kwargs.setdefault("initial", mine[0].pk)
        elif has_space(related):
            kwargs["queryset"] = narrow(request, related._default_manager.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _found_or_404(self, request: HttpRequest, object_id: str) -> None:
        """Answer 404 for a row that is missing or in another Space, before any permission.

        Django checks permissions first, so a read-only record would answer 403 to a POST:
        the same for every id, yet not the 404 every other page gives such an id.
        """
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """The change page of a row of the user's Spaces only."""
        self._found_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """The delete page of a row of the user's Spaces only."""
        self._found_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """The history page of a row of the user's Spaces only."""
        self._found_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        """A row that is missing or in another Space is not found: 404, never a hint."""
        raise Http404(f"No {opts.verbose_name} with this id.")
