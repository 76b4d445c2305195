"""Reads narrowed to the Spaces a staff member may work in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, Q, QuerySet

from rooms.models import Space

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

M = TypeVar("M", bound=Model)

# `spaces=None` everywhere means every Space (a superuser, or the portal itself).
Spaces = Iterable[Space | int] | None


def space_ids(spaces: Spaces) -> list[int] | None:
    """Return the ids of some Spaces, or None for every Space."""
    if spaces is None:
        return None
    return [space if isinstance(space, int) else space.pk for space in spaces]


def spaces_of(user: AbstractBaseUser | AnonymousUser) -> list[Space] | None:
    """Return the Spaces a user may see, or None when they may see every Space.

    While the portal has a single Space every member of staff works in it, as before Spaces
    existed: grants start to matter once a second Space is added.
    """
    if getattr(user, "is_superuser", False) and getattr(user, "is_active", False):
        return None
    granted = list(Space.objects.visible_to(user))
    if granted or not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        return granted
    only = list(Space.objects.all()[:2])
    return only if len(only) == 1 else []


def may_see_space(user: AbstractBaseUser | AnonymousUser, space_id: int) -> bool:
    """Tell whether a user may see what belongs to one Space."""
    spaces = spaces_of(user)
    return spaces is None or any(space.pk == space_id for space in spaces)


def in_spaces(
    queryset: QuerySet[M], spaces: Spaces, *, field: str = "space", portal_wide: bool = False
) -> QuerySet[M]:
    """Keep the rows of some Spaces; `portal_wide` also keeps rows that belong to no Space."""
    ids = space_ids(spaces)
    if ids is None:
        return queryset
    match = Q(**{f"{field}__in": ids})
    if portal_wide:
        match |= Q(**{f"{field}__isnull": True})
    return queryset.filter(match)


def one_space(queryset: QuerySet[Any]) -> int | None:
    """Return the id of the one Space a set of rows belongs to, or None when they span more."""
    found = list(queryset.order_by().values_list("space_id", flat=True).distinct()[:2])
    return found[0] if len(found) == 1 else None


class SpaceNames:
    """How alerts about one Space name it: the environment's Space by its subject alone."""

    def __init__(self) -> None:
        self.names = dict(Space.objects.values_list("pk", "name"))
        self.first = Space.objects.filter(from_settings=True).values_list("pk", flat=True).first()

    def subject(self, subject: str, space_id: int) -> str:
        """The alert's subject: the Space's name beside it unless it is the first Space."""
        if space_id == self.first:
            return subject
        return f"{subject} in {self.names.get(space_id, space_id)}"

    def where(self, space_id: int) -> str:
        """' in Space "X"' when the portal has several Spaces, else nothing."""
        if len(self.names) < 2:
            return ""
        return f' in the Space "{self.names.get(space_id, space_id)}"'

    def link(self, link: str, space_id: int) -> str:
        """The changelist link, narrowed to the Space when the portal has several."""
        if len(self.names) < 2 or "?" not in link:
            return link
        return f"{link}&space={space_id}"
