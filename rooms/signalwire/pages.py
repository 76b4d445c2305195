"""Listing pages: follow links.next on the Space's own origin, bounded in rows and loops."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from rooms.signalwire.errors import (
    UnexpectedResponseError,
)
from rooms.signalwire.session import SpaceSession, default_port

logger = logging.getLogger("rooms.signalwire")

# A pagination link longer than this is not a link any API sends.
LINK_MAX = 4096


# What a pagination link may hold: RFC 3986 characters only, so no backslash, space,
# control or non-ASCII character can make two URL parsers read it differently.
LINK_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


PERCENT_ESCAPES = re.compile(r"%(?![0-9A-Fa-f]{2})")


# Query parameters that name a page of a listing (SignalWire's cursor pagination).
CURSOR_PARAMETERS = ("page_token", "page_number")


# Undocumented keys a list answer might use to say how many rows the listing has.
COUNT_KEYS = ("total", "total_count", "count")


def _page_key(path: str, query: str) -> tuple[Any, ...]:
    """Name a page by its path and its query parameters in any order."""
    return ("url", path, tuple(sorted(parse_qsl(query, keep_blank_values=True))))


def _cursor_key(query: str) -> set[tuple[Any, ...]]:
    """Name a page by its cursor (page token and number), when the link has one."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not any(name in params for name in CURSOR_PARAMETERS):
        return set()
    return {("cursor", *(params.get(name) for name in CURSOR_PARAMETERS))}


def _declared_count(body: dict[str, Any]) -> int | None:
    """Read how many rows a list answer says its listing has, if it says so at all."""
    for holder in (body, body.get("meta"), body.get("links")):
        if not isinstance(holder, dict):
            continue
        for key in COUNT_KEYS:
            value = holder.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
    return None


class PagedSession(SpaceSession):
    """A Space session that also reads listings page by page."""

    def iter_pages(
        self,
        path: str,
        *,
        params: dict[str, str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the data of each page of a list, following links.next within the Space.

        `params` filter the listing: they go on the first request only, and SignalWire
        carries them in links.next. A listing ends when links.next is absent. It fails,
        before the page that says so is handed over, when a link leaves the listing or the
        Space, when it leads to a page already read (a loop), or when the listing runs past
        what its first page implies (see `_bounds`).
        """
        listing = path
        size = self.page_size if page_size is None else self._checked_page_size(page_size)
        url: str | None = self.space_url + path
        first: dict[str, Any] = {**(params or {}), "page_size": size}
        query: dict[str, Any] | None = first
        seen = {_page_key(path, urlencode(first))}
        pages = rows = 0
        max_pages = max_rows = 0
        while url is not None:
            body = self._json("GET", listing, self._send("GET", url, params=query))
            data = body.get("data") if isinstance(body, dict) else None
            links = body.get("links") if isinstance(body, dict) else None
            if not isinstance(data, list) or not isinstance(links, dict):
                raise UnexpectedResponseError(
                    "the answer is not a list with data and links",
                    method="GET",
                    path=listing,
                    status=200,
                )
            pages += 1
            rows += len(data)
            if pages == 1:
                max_pages, max_rows = self._bounds(body, len(data), size)
            next_link = links.get("next")
            del body, links
            if rows > max_rows:
                raise self._listing_error(
                    listing, f"the listing goes on past {max_rows} rows; stopped reading it"
                )
            following = None
            if next_link is not None and next_link != "":  # absent, null or empty: the end
                if pages >= max_pages:
                    raise self._listing_error(
                        listing,
                        f"the listing goes on past {max_pages} pages, more than its first "
                        "page implies; stopped reading it",
                    )
                following, keys = self._next_page(next_link, listing)
                if seen.intersection(keys):
                    raise self._listing_error(
                        listing, "links.next leads back to a page already read (a loop)"
                    )
                seen.update(keys)
            yield data
            del data
            url, query = following, None

    def _bounds(self, body: dict[str, Any], first_rows: int, size: int) -> tuple[int, int]:
        """Bound a listing's pages and rows by what its first page implies.

        The rows per page are what the first page shows (a Space may serve fewer than
        asked for), else the page size asked for. The rows are those the answer says the
        listing has (SignalWire documents no count, so usually none), plus one page for
        rows added meanwhile; else SIGNALWIRE_MAX_LIST_ROWS.
        """
        per_page = first_rows if 0 < first_rows < size else size
        max_rows = self.max_list_rows
        count = _declared_count(body)
        if count is not None:
            max_rows = min(max_rows, max(count, first_rows) + per_page)
        return math.ceil(max_rows / per_page) + 1, max_rows

    @staticmethod
    def _listing_error(path: str, message: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(message, method="GET", path=path, status=200)

    def _next_page(self, link: object, listing: str) -> tuple[str, set[tuple[Any, ...]]]:
        """Turn links.next into a URL on the Space's own origin, and the keys of its page.

        Only the link's path and query are used, and only when its authority (if it has
        one) is plainly this Space's: the HTTP stack is never handed a host, port or
        credentials from a link, so no parser disagreement can send the token elsewhere.
        """
        if not isinstance(link, str):
            raise self._listing_error(listing, "links.next is not a string")
        shown = ascii(link[:120])
        if (
            not link
            or len(link) > LINK_MAX
            or not LINK_CHARACTERS.fullmatch(link)
            or PERCENT_ESCAPES.search(link)
        ):
            raise self._listing_error(
                listing, f"links.next {shown} is not a well-formed link; not following it"
            )
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or link.startswith("//"):
            authority = AUTHORITY.fullmatch(parts.netloc)
            origin = None
            if authority is not None and parts.scheme:
                scheme = parts.scheme.lower()
                port = authority["port"]
                origin = (
                    scheme,
                    authority["host"].strip("[]").lower(),
                    int(port) if port else default_port(scheme),
                )
            if origin != self._origin:
                raise self._listing_error(
                    listing, f"links.next {shown} points outside the Space; not following it"
                )
        path = parts.path or listing
        if path != listing:
            raise self._listing_error(
                listing, f"links.next {shown} leads to another listing; not following it"
            )
        query = parts.query
        url = f"{self.space_url}{path}?{query}" if query else f"{self.space_url}{path}"
        return url, {_page_key(path, query), *_cursor_key(query)}
