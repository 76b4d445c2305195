"""The only code that speaks HTTP to SignalWire's Video REST API.

One `SignalWireClient` per Space: a pooled `requests.Session` with Basic auth, urllib3
retries that never repeat a write the server may have acted on, and on every call a
wall-clock deadline (connect, retries and body included) and a cap on the bytes of an
answer. Pagination links are followed only as a path and query on the Space's own origin.
It returns plain dicts and lists and raises the typed errors of `rooms.signalwire.errors`;
it never touches models. `build_client(profile=...)` gives the process's shared client for
the interactive (web request) or background (task) budget, built from settings at call time.
"""

from __future__ import annotations

import email.utils
import functools
import http.cookiejar
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from urllib3.exceptions import (
    HTTPError,
    MaxRetryError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import RequestHistory, Retry

from rooms.signalwire import transport
from rooms.signalwire.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    RateLimitedError,
    RemoteCallInTransactionError,
    SignalWireError,
    UnavailableError,
    UnexpectedResponseError,
    ValidationError,
)
from rooms.signalwire.schema import PAGE_SIZE_MAX, PAGE_SIZE_MIN
from rooms.signalwire.urls import SpaceURLError, normalise_space_url

logger = logging.getLogger("rooms.signalwire")

API = "/api/video"
# Methods whose repetition cannot change the outcome: retried on read errors and 5xx.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that mean the server did not act on the request, so even a POST may be repeated.
NOT_ACTED_STATUSES = frozenset({429, 503})
# A create that fails ambiguously is looked up and then tried at most this many times.
CREATE_ATTEMPTS = 3
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.RetryError,
    requests.exceptions.ChunkedEncodingError,
)
REQUEST_ID_HEADERS = ("X-Request-Id", "X-Signalwire-Request-Id")
MESSAGE_MAX = 500
PROFILES = ("interactive", "background")
# Bytes read from the socket at a time while an answer's size is checked against the cap.
READ_CHUNK = 64 * 1024
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


@functools.cache
def user_agent() -> str:
    """Name the portal and its version to SignalWire, so its support can tell us apart."""
    try:
        from portal import __version__ as version
    except Exception:  # the client also runs outside the Django project (benchmarks)
        version = "0"
    return f"room-portal/{version}"


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def _attach_history(exc: BaseException, history: tuple[RequestHistory, ...]) -> None:
    """Remember on an exception which attempts preceded it, for logging and error mapping."""
    try:
        exc.signalwire_history = history  # type: ignore[attr-defined]
    except AttributeError:  # exceptions with __slots__ cannot carry it; the facts are optional
        pass


class SpaceRetry(Retry):
    """urllib3 Retry that repeats a POST only when the server surely did not act on it.

    Connect errors are retried for every method (urllib3's `connect` counter); read errors
    and 5xx only for idempotent methods (`allowed_methods`); a POST is repeated on 429 and
    503 because those mean the server did nothing. The total time slept across retries
    (backoff with jitter, or Retry-After when longer) never exceeds `max_wait`: a
    Retry-After beyond what is left stops the retries and the last answer is returned.
    """

    def __init__(
        self, *args: Any, max_wait: float = 30.0, waited: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        self.waited = waited
        self.next_delay = 0.0

    def new(self, **kw: Any) -> SpaceRetry:
        """Carry the cap and the time already slept into the next Retry object."""
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Retry listed statuses for idempotent methods, and only 429/503 for the others."""
        if self._is_method_retryable(method):
            return status_code in self.status_forcelist
        return status_code in NOT_ACTED_STATUSES

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> SpaceRetry:
        """Count one more attempt, plan the pause before the next one and enforce the cap."""
        status = getattr(response, "status", None)
        history = (*self.history, RequestHistory(method, url, error, status, None))
        try:
            new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except Exception as exc:
            _attach_history(exc, history)
            raise
        delay = new_retry.get_backoff_time()
        header_delay = None
        if response is not None and self.respect_retry_after_header:
            header_delay = retry_after_seconds(response.headers.get("Retry-After"))
        if header_delay is not None:
            delay = max(delay, header_delay)
        elif status in NOT_ACTED_STATUSES:
            # The server asked for less traffic without saying how long: never hammer it.
            delay = max(delay, self.backoff_factor)
        remaining = self.max_wait - self.waited
        if delay > remaining:
            if (header_delay is not None and header_delay > remaining) or remaining <= 0:
                reason = error or ResponseError(f"retry wait cap of {self.max_wait:g}s reached")
                exc = MaxRetryError(_pool, url or "", reason)  # type: ignore[arg-type]
                _attach_history(exc, history)
                raise exc
            delay = remaining
        call = transport.current_call()
        if call is not None:
            call.detach_all()  # the attempt is over; its connection may serve someone else
            if delay >= call.remaining():
                call.gave_up = True
                reason = error or ResponseError(f"the call's {call.seconds:g}s deadline passed")
                exc = MaxRetryError(_pool, url or "", reason)  # type: ignore[arg-type]
                _attach_history(exc, history)
                raise exc
        new_retry.waited = self.waited + delay
        new_retry.next_delay = delay
        return new_retry

    def sleep(self, response: Any = None) -> None:
        """Pause for the delay planned by `increment`, Retry-After included."""
        if self.next_delay > 0:
            time.sleep(self.next_delay)


def _error_chain(exc: BaseException) -> Iterator[BaseException]:
    """Walk an exception, its causes and the urllib3 errors requests wraps in args[0]."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend((item.__cause__, item.__context__, getattr(item, "reason", None)))
        todo.extend(arg for arg in item.args[:1] if isinstance(arg, BaseException))


def _transport_facts(exc: BaseException) -> tuple[int, bool]:
    """Tell from a transport failure how many attempts were made and whether one was sent."""
    history: tuple[RequestHistory, ...] = ()
    sent = isinstance(exc, (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError))
    for item in _error_chain(exc):
        history = getattr(item, "signalwire_history", None) or history
        if isinstance(item, (ReadTimeoutError, ProtocolError)):
            sent = True
    for entry in history:
        if isinstance(entry.error, (ReadTimeoutError, ProtocolError)):
            sent = True
    return max(len(history), 1), sent


def _quote(value: str) -> str:
    """Quote an id or name as a single path segment, so it cannot walk to another path."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id or name must be a non-empty string")
    return quote(value, safe="")


_T = TypeVar("_T")


def _one_call(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a client method that sends several requests under one call deadline."""

    @functools.wraps(method)
    def wrapper(self: SignalWireClient, *args: Any, **kwargs: Any) -> _T:
        with transport.call_budget(self.deadline):
            return method(self, *args, **kwargs)

    return wrapper


class SignalWireClient:
    """Talk to one SignalWire Space's Video API; plain data in and out, typed errors."""

    def __init__(
        self,
        *,
        space_url: str,
        project_id: str,
        api_token: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_wait: float = 30.0,
        page_size: int = 1000,
        deadline: float = 120.0,
        max_response_bytes: int = 8 * 1024 * 1024,
        max_list_rows: int = 1_000_000,
        profile: str = "background",
    ) -> None:
        try:
            self.space_url = normalise_space_url(space_url)
        except SpaceURLError as exc:
            raise ConfigurationError(f"SIGNALWIRE_SPACE_URL: {exc}") from None
        if not project_id or not isinstance(project_id, str):
            raise ConfigurationError("SIGNALWIRE_PROJECT_ID is not set")
        if not api_token or not isinstance(api_token, str):
            raise ConfigurationError("SIGNALWIRE_API_TOKEN is not set")
        if connect_timeout <= 0 or read_timeout <= 0 or deadline <= 0:
            raise ConfigurationError("SignalWire timeouts and deadlines must be positive")
        if retries < 0 or backoff_factor < 0 or max_retry_wait < 0:
            raise ConfigurationError("SignalWire retry settings must not be negative")
        if max_response_bytes < 1024 or max_list_rows < 1:
            raise ConfigurationError(
                "SIGNALWIRE_MAX_RESPONSE_BYTES must be at least 1024 and "
                "SIGNALWIRE_MAX_LIST_ROWS at least 1"
            )
        self.project_id = project_id
        self.profile = profile
        self.page_size = self._checked_page_size(page_size)
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.deadline = float(deadline)
        self.max_response_bytes = int(max_response_bytes)
        self.max_list_rows = int(max_list_rows)
        self.shared = False
        parts = urlsplit(self.space_url)
        self._origin = (parts.scheme, parts.hostname, parts.port or _default_port(parts.scheme))
        self.retry = SpaceRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            allowed_methods=IDEMPOTENT_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            backoff_max=max_retry_wait,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=True,
            max_wait=max_retry_wait,
        )
        self._session = requests.Session()
        self._session.auth = (project_id, api_token)
        self._session.headers.update({"User-Agent": user_agent(), "Accept": "application/json"})
        # The API sets no cookies; a shared session must never carry one between callers.
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = transport.DeadlineAdapter(
            pool_connections=1, pool_maxsize=10, max_retries=self.retry
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        """Name the Space, project and profile, never the token."""
        return f"<SignalWireClient {self.space_url} project={self.project_id} {self.profile}>"

    def close(self) -> None:
        """Release the pooled connections; a no-op on the process's shared clients."""
        if not self.shared:
            self._session.close()

    def __enter__(self) -> SignalWireClient:
        """Use the client in a with block so its connections are released."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release the pooled connections when the with block ends."""
        self.close()

    # --- conferences ------------------------------------------------------------------

    def iter_conference_pages(self, page_size: int | None = None) -> Iterator[list[dict]]:
        """Yield the Space's conferences one page at a time, following links.next."""
        return self._iter_pages(f"{API}/conferences", page_size)

    def list_conferences(self, page_size: int | None = None) -> Iterator[dict]:
        """Yield every conference, fetching pages lazily so memory stays at one page."""
        for page in self.iter_conference_pages(page_size):
            yield from page

    def get_conference(self, conference_id: str) -> dict:
        """Fetch one conference by id."""
        return self._object("GET", f"{API}/conferences/{_quote(conference_id)}")

    @_one_call
    def find_conference_by_name(self, name: str) -> dict | None:
        """Find a conference by its unique name by scanning the list (no by-name endpoint)."""
        for conference in self.list_conferences():
            if conference.get("name") == name:
                return conference
        return None

    def create_conference(self, data: dict) -> dict:
        """Create a conference; an ambiguous failure is resolved by name, never duplicated."""
        return self._create(f"{API}/conferences", data, self.find_conference_by_name)

    def update_conference(self, conference_id: str, data: dict) -> dict:
        """Replace a conference's managed fields with exactly the given data (PUT)."""
        path = f"{API}/conferences/{_quote(conference_id)}"
        return self._object("PUT", path, json_body=data)

    def delete_conference(self, conference_id: str) -> None:
        """Delete a conference."""
        self._delete(f"{API}/conferences/{_quote(conference_id)}")

    # --- conference tokens ------------------------------------------------------------

    @_one_call
    def list_conference_tokens(self, conference_id: str) -> list[dict]:
        """Return every token (moderator, guest) of a conference, all pages read."""
        path = f"{API}/conferences/{_quote(conference_id)}/conference_tokens"
        return [token for page in self._iter_pages(path, None) for token in page]

    def get_conference_token(self, token_id: str) -> dict:
        """Fetch one conference token by id."""
        return self._object("GET", f"{API}/conference_tokens/{_quote(token_id)}")

    def reset_conference_token(self, token_id: str) -> dict:
        """Rotate a conference token's value in SignalWire and return the new token."""
        return self._object("POST", f"{API}/conference_tokens/{_quote(token_id)}/reset")

    # --- rooms ------------------------------------------------------------------------

    def iter_room_pages(self, page_size: int | None = None) -> Iterator[list[dict]]:
        """Yield the Space's rooms one page at a time, following links.next."""
        return self._iter_pages(f"{API}/rooms", page_size)

    def list_rooms(self, page_size: int | None = None) -> Iterator[dict]:
        """Yield every room, fetching pages lazily so memory stays at one page."""
        for page in self.iter_room_pages(page_size):
            yield from page

    def get_room(self, room_id: str) -> dict:
        """Fetch one room by id."""
        return self._object("GET", f"{API}/rooms/{_quote(room_id)}")

    def get_room_by_name(self, name: str) -> dict:
        """Fetch one room by its unique name; NotFoundError when there is none."""
        return self._object("GET", f"{API}/rooms/{_quote(name)}")

    def create_room(self, data: dict) -> dict:
        """Create a room; an ambiguous failure is resolved by name, never duplicated."""
        return self._create(f"{API}/rooms", data, self._find_room_by_name)

    def update_room(self, room_id: str, data: dict) -> dict:
        """Replace a room's managed fields with exactly the given data (PUT)."""
        return self._object("PUT", f"{API}/rooms/{_quote(room_id)}", json_body=data)

    def delete_room(self, room_id: str) -> None:
        """Delete a room."""
        self._delete(f"{API}/rooms/{_quote(room_id)}")

    # --- room tokens ------------------------------------------------------------------

    def create_room_token(self, data: dict) -> str:
        """Mint a room join token and return it; the caller shows it once and keeps none."""
        path = f"{API}/room_tokens"
        body = self._json("POST", path, self._send("POST", path, json_body=data))
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponseError(
                "the answer has no token", method="POST", path=path, status=200
            )
        return token

    # --- plumbing ---------------------------------------------------------------------

    @staticmethod
    def _checked_page_size(page_size: int) -> int:
        """Keep page sizes inside what the API accepts."""
        if not isinstance(page_size, int) or not PAGE_SIZE_MIN <= page_size <= PAGE_SIZE_MAX:
            raise ConfigurationError(
                f"page size must be between {PAGE_SIZE_MIN} and {PAGE_SIZE_MAX}"
            )
        return page_size

    def _find_room_by_name(self, name: str) -> dict | None:
        """Look a room up by name, None when SignalWire has none."""
        try:
            return self.get_room_by_name(name)
        except NotFoundError:
            return None

    @_one_call
    def _create(self, path: str, data: dict, lookup: Callable[[str], dict | None]) -> dict:
        """POST a create; after an ambiguous failure look the name up before trying again."""
        name = data.get("name") if isinstance(data, dict) else None
        for _ in range(CREATE_ATTEMPTS):
            try:
                return self._object("POST", path, json_body=data)
            except UnavailableError as exc:
                if not exc.maybe_applied or not isinstance(name, str) or not name:
                    raise
                failure = exc
            try:
                found = lookup(name)
            except SignalWireError as exc:
                raise failure from exc
            if found is not None:
                logger.info("POST %s: the ambiguous create was found by name", path)
                return found
        raise failure

    def _delete(self, path: str) -> None:
        """DELETE an object; a 404 after a dropped earlier attempt means it is already gone."""
        answer = self._send("DELETE", path)
        if 200 <= answer.status_code < 300:
            return
        if answer.status_code == 404 and answer.retried_after_send():
            return
        raise _status_error("DELETE", path, answer)

    def _object(self, method: str, path: str, *, json_body: dict | None = None) -> dict:
        """Send a request whose answer is one API object (a dict with an id)."""
        body = self._json(method, path, self._send(method, path, json_body=json_body))
        if not isinstance(body, dict) or "id" not in body:
            raise UnexpectedResponseError(
                "the answer is not an object with an id", method=method, path=path, status=200
            )
        return body

    def _iter_pages(self, path: str, page_size: int | None) -> Iterator[list[dict]]:
        """Yield the data of each page of a list, following links.next within the Space.

        A listing ends when links.next is absent. It fails, before the page that says so
        is handed over, when a link leaves the listing or the Space, when it leads to a
        page already read (a loop), or when the listing runs past what its first page
        implies (see `_bounds`).
        """
        listing = path
        size = self.page_size if page_size is None else self._checked_page_size(page_size)
        url: str | None = self.space_url + path
        params: dict | None = {"page_size": size}
        seen = {_page_key(path, f"page_size={size}")}
        pages = rows = 0
        max_pages = max_rows = 0
        while url is not None:
            body = self._json("GET", listing, self._send("GET", url, params=params))
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
            url, params = following, None

    def _bounds(self, body: dict, first_rows: int, size: int) -> tuple[int, int]:
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

    def _next_page(self, link: object, listing: str) -> tuple[str, set[tuple]]:
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
                    int(port) if port else _default_port(scheme),
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

    def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        json_body: dict | None = None,
        params: dict | None = None,
    ) -> _Answer:
        """Send one request (retries included) within the call's deadline and read its answer.

        Transport failures become UnavailableError; an answer larger than the byte cap
        becomes UnexpectedResponseError, read no further.
        """
        url = path_or_url if "://" in path_or_url else self.space_url + path_or_url
        path = urlsplit(url).path
        _refuse_in_transaction(method, path)
        with transport.call_budget(self.deadline) as call:
            started = time.perf_counter()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    timeout=transport.DeadlineTimeout(
                        connect=self.timeout[0], read=self.timeout[1], deadline=call.deadline
                    ),
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as exc:
                attempts, sent = _transport_facts(exc)
                elapsed = (time.perf_counter() - started) * 1000
                logger.info(
                    "%s %s failed (%s) in %.0f ms after %d attempt(s)",
                    method,
                    path,
                    type(exc).__name__,
                    elapsed,
                    attempts,
                )
                if isinstance(exc, TRANSPORT_ERRORS):
                    if call.out_of_time:
                        reason = f"did not complete within its {call.seconds:g}s deadline"
                    elif _timed_out(exc):
                        reason = "timed out"
                    else:
                        reason = "could not be completed"
                    raise UnavailableError(
                        f"the request {reason} after {attempts} attempt(s) "
                        f"({type(exc).__name__})",
                        method=method,
                        path=path,
                        maybe_applied=sent,
                    ) from exc
                raise SignalWireError(
                    f"the request failed ({type(exc).__name__})", method=method, path=path
                ) from exc
            try:
                body = self._read_body(method, path, response, call)
            finally:
                response.close()
            if call.expired:
                # The watchdog cut the socket: an answer that seemed to end there (an
                # empty header line, a body up to the close) is a truncated one.
                raise UnavailableError(
                    f"the answer did not complete within its {call.seconds:g}s deadline",
                    method=method,
                    path=path,
                    status=response.status_code,
                    maybe_applied=True,
                )
        answer = _Answer(response, body)
        logger.info(
            "%s %s %s in %.0f ms after %d attempt(s)",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            answer.attempts,
        )
        return answer

    def _read_body(
        self, method: str, path: str, response: requests.Response, call: transport.Call
    ) -> bytes:
        """Read an answer's body, refusing one past the byte cap; the deadline bounds it."""
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length", "").strip()
        too_large = UnexpectedResponseError(
            f"the answer is larger than the {limit}-byte limit (SIGNALWIRE_MAX_RESPONSE_BYTES)"
            "; not read",
            method=method,
            path=path,
            status=response.status_code,
            request_id=_request_id(response),
        )
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        try:
            for chunk in response.iter_content(READ_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise too_large
        except (requests.RequestException, HTTPError, OSError) as exc:
            reason = (
                f"did not complete within its {call.seconds:g}s deadline"
                if call.out_of_time
                else "was cut off"
            )
            logger.info("%s %s: the answer %s (%s)", method, path, reason, type(exc).__name__)
            raise UnavailableError(
                f"the answer {reason} ({type(exc).__name__})",
                method=method,
                path=path,
                status=response.status_code,
                maybe_applied=True,
            ) from exc
        return bytes(body)

    def _json(self, method: str, path: str, answer: _Answer) -> Any:
        """Return the parsed body of a 2xx answer, or raise the typed error for the status."""
        status = answer.status_code
        if 200 <= status < 300:
            try:
                return json.loads(answer.content)
            except ValueError:
                raise UnexpectedResponseError(
                    "the body is not JSON",
                    method=method,
                    path=path,
                    status=status,
                    request_id=_request_id(answer),
                ) from None
        raise _status_error(method, path, answer)


class _Answer:
    """A received answer: status, headers and the body already read (within its cap)."""

    __slots__ = ("status_code", "headers", "reason", "content", "_retries")

    def __init__(self, response: requests.Response, body: bytes) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.reason = response.reason
        self.content = body
        self._retries = getattr(response.raw, "retries", None)

    @property
    def attempts(self) -> int:
        """How many attempts urllib3 made to get this answer."""
        return len(getattr(self._retries, "history", ())) + 1

    def retried_after_send(self) -> bool:
        """Tell whether an earlier attempt of this request may have reached the server."""
        history = getattr(self._retries, "history", ())
        return any(isinstance(h.error, (ReadTimeoutError, ProtocolError)) for h in history)


def _page_key(path: str, query: str) -> tuple:
    """Name a page by its path and its query parameters in any order."""
    return ("url", path, tuple(sorted(parse_qsl(query, keep_blank_values=True))))


def _cursor_key(query: str) -> set[tuple]:
    """Name a page by its cursor (page token and number), when the link has one."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not any(name in params for name in CURSOR_PARAMETERS):
        return set()
    return {("cursor", *(params.get(name) for name in CURSOR_PARAMETERS))}


def _declared_count(body: dict) -> int | None:
    """Read how many rows a list answer says its listing has, if it says so at all."""
    for holder in (body, body.get("meta"), body.get("links")):
        if not isinstance(holder, dict):
            continue
        for key in COUNT_KEYS:
            value = holder.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
    return None


def _refuse_in_transaction(method: str, path: str) -> None:
    """Refuse to wait on SignalWire inside a database transaction, when settings say so.

    The rule is Django's for atomic(durable=True): an atomic block other than a test
    case's own, or autocommit turned off by hand, on any of this thread's connections
    (Django's connections are per thread). Read at each call, so tests can switch it.
    """
    try:
        from django.conf import settings
    except ImportError:  # the client also runs outside the Django project (benchmarks)
        return
    if not settings.configured or not getattr(settings, "SIGNALWIRE_REFUSE_IN_TRANSACTION", False):
        return
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        blocks = conn.atomic_blocks
        if blocks and not blocks[-1]._from_testcase:
            held = "an atomic block"
        elif not blocks and conn.connection is not None and not conn.autocommit:
            held = "a transaction (autocommit is off)"
        else:
            continue
        raise RemoteCallInTransactionError(
            f"{method} {path}: refused to call SignalWire while {held} is open on database "
            f"connection {conn.alias!r}; call SignalWire first, then write in a short "
            "transaction (SIGNALWIRE_REFUSE_IN_TRANSACTION)"
        )


def _default_port(scheme: str) -> int | None:
    """Give the port a URL scheme implies, so :443 and no port compare equal."""
    return {"https": 443, "http": 80}.get(scheme)


def _timed_out(exc: BaseException) -> bool:
    """Tell whether a transport failure was a timeout."""
    return any(isinstance(item, (requests.Timeout, TimeoutError)) for item in _error_chain(exc))


def _request_id(response: requests.Response | _Answer) -> str | None:
    """Read SignalWire's request id from an answer, when it sent one."""
    for header in REQUEST_ID_HEADERS:
        value = response.headers.get(header)
        if value:
            return value[:200]
    return None


def _status_error(method: str, path: str, response: _Answer) -> SignalWireError:
    """Map a non-2xx answer to the typed error a caller can act on."""
    status = response.status_code
    facts: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "request_id": _request_id(response),
    }
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"][:MESSAGE_MAX]
    if status in (401, 403):
        hint = AuthenticationError.default_message
        return AuthenticationError(f"{message}: {hint}" if message else hint, **facts)
    if status == 404:
        return NotFoundError(message or NotFoundError.default_message, **facts)
    if status == 422:
        field_errors, non_field_errors = _validation_messages(body)
        return ValidationError(
            field_errors=field_errors, non_field_errors=non_field_errors or [], **facts
        )
    if status == 400:
        return ValidationError(non_field_errors=[message or "Bad Request"], **facts)
    if status == 429:
        return RateLimitedError(
            retry_after=retry_after_seconds(response.headers.get("Retry-After")), **facts
        )
    if status >= 500:
        return UnavailableError(message or response.reason or "", **facts)
    return UnexpectedResponseError(f"unexpected status {response.reason or ''}".strip(), **facts)


def _validation_messages(body: object) -> tuple[dict[str, list[str]], list[str]]:
    """Split a 422 errors array into per-field messages and messages for no field."""
    field_errors: dict[str, list[str]] = {}
    non_field_errors: list[str] = []
    entries = body.get("errors") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        text = str(entry.get("message") or entry.get("code") or "is invalid")[:MESSAGE_MAX]
        attribute = entry.get("attribute")
        if isinstance(attribute, str) and attribute:
            field_errors.setdefault(attribute, []).append(text)
        else:
            non_field_errors.append(text)
    if not field_errors and not non_field_errors:
        non_field_errors.append("SignalWire rejected the request")
    return field_errors, non_field_errors


# The process's clients, one per profile and settings; see build_client.
_SHARED: dict[tuple, SignalWireClient] = {}
_SHARED_LOCK = threading.Lock()
# Distinct settings seen (tests change them); the oldest clients are dropped past this.
_SHARED_MAX = 16


def client_options(profile: str = "background") -> dict[str, Any]:
    """Return the SignalWireClient arguments a profile takes from the settings as they are now.

    "background" (tasks, commands) has the longer budget of SIGNALWIRE_CONNECT_TIMEOUT,
    SIGNALWIRE_READ_TIMEOUT, SIGNALWIRE_RETRIES, SIGNALWIRE_RETRY_MAX_WAIT and
    SIGNALWIRE_DEADLINE; "interactive" (a web request waiting on its answer) has one retry
    at most and SIGNALWIRE_INTERACTIVE_DEADLINE in all, which also caps its timeouts.
    """
    from django.conf import settings

    if profile not in PROFILES:
        raise ConfigurationError(f"unknown client profile {profile!r}; use one of {PROFILES}")
    options: dict[str, Any] = {
        "space_url": settings.SIGNALWIRE_SPACE_URL,
        "project_id": settings.SIGNALWIRE_PROJECT_ID,
        "api_token": settings.SIGNALWIRE_API_TOKEN,
        "connect_timeout": settings.SIGNALWIRE_CONNECT_TIMEOUT,
        "read_timeout": settings.SIGNALWIRE_READ_TIMEOUT,
        "retries": settings.SIGNALWIRE_RETRIES,
        "backoff_factor": settings.SIGNALWIRE_RETRY_BACKOFF,
        "max_retry_wait": settings.SIGNALWIRE_RETRY_MAX_WAIT,
        "page_size": settings.SIGNALWIRE_SYNC_PAGE_SIZE,
        "deadline": settings.SIGNALWIRE_DEADLINE,
        "max_response_bytes": settings.SIGNALWIRE_MAX_RESPONSE_BYTES,
        "max_list_rows": settings.SIGNALWIRE_MAX_LIST_ROWS,
        "profile": profile,
    }
    if profile == "interactive":
        deadline = settings.SIGNALWIRE_INTERACTIVE_DEADLINE
        options.update(
            deadline=deadline,
            connect_timeout=min(options["connect_timeout"], deadline),
            read_timeout=min(options["read_timeout"], deadline),
            retries=min(options["retries"], settings.SIGNALWIRE_INTERACTIVE_RETRIES),
            max_retry_wait=min(
                options["max_retry_wait"], settings.SIGNALWIRE_INTERACTIVE_RETRY_MAX_WAIT
            ),
        )
    return options


def build_client(profile: str = "background") -> SignalWireClient:
    """Return this process's client for a profile, built from the settings as they are now.

    One client, hence one connection pool, per process, profile and settings: later
    calls with the same settings reuse it (a forked worker or changed settings get a
    fresh one). Its close() does nothing, so callers may still use it in a with block.
    """
    options = client_options(profile)
    key = (os.getpid(), *sorted(options.items()))
    with _SHARED_LOCK:
        client = _SHARED.get(key)
        if client is None:
            client = SignalWireClient(**options)
            client.shared = True
            _SHARED[key] = client
            while len(_SHARED) > _SHARED_MAX:
                # Dropped, not closed: another thread may still be using it.
                del _SHARED[next(iter(_SHARED))]
    return client
