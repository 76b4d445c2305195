"""The only code that speaks HTTP to SignalWire's Video REST API.

One `SignalWireClient` per Space: a pooled `requests.Session` with Basic auth, a timeout on
every request and urllib3 retries that never repeat a write the server may have acted on.
It returns plain dicts and lists and raises the typed errors of `rooms.signalwire.errors`;
it never touches models. `build_client()` makes one from Django settings at call time.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError, ResponseError
from urllib3.util.retry import RequestHistory, Retry

from rooms.signalwire.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    RateLimitedError,
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
    ) -> None:
        try:
            self.space_url = normalise_space_url(space_url)
        except SpaceURLError as exc:
            raise ConfigurationError(f"SIGNALWIRE_SPACE_URL: {exc}") from None
        if not project_id or not isinstance(project_id, str):
            raise ConfigurationError("SIGNALWIRE_PROJECT_ID is not set")
        if not api_token or not isinstance(api_token, str):
            raise ConfigurationError("SIGNALWIRE_API_TOKEN is not set")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigurationError("SignalWire timeouts must be positive")
        if retries < 0 or backoff_factor < 0 or max_retry_wait < 0:
            raise ConfigurationError("SignalWire retry settings must not be negative")
        self.project_id = project_id
        self.page_size = self._checked_page_size(page_size)
        self.timeout = (float(connect_timeout), float(read_timeout))
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
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=10, max_retries=self.retry)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        """Name the Space and project, never the token."""
        return f"<SignalWireClient {self.space_url} project={self.project_id}>"

    def close(self) -> None:
        """Release the pooled connections."""
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
        response = self._send("DELETE", path)
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 404 and self._retried_after_send(response):
            return
        raise _status_error("DELETE", path, response)

    @staticmethod
    def _retried_after_send(response: requests.Response) -> bool:
        """Tell whether an earlier attempt of this request may have reached the server."""
        retries = getattr(response.raw, "retries", None)
        history = getattr(retries, "history", ())
        return any(isinstance(h.error, (ReadTimeoutError, ProtocolError)) for h in history)

    def _object(self, method: str, path: str, *, json_body: dict | None = None) -> dict:
        """Send a request whose answer is one API object (a dict with an id)."""
        body = self._json(method, path, self._send(method, path, json_body=json_body))
        if not isinstance(body, dict) or "id" not in body:
            raise UnexpectedResponseError(
                "the answer is not an object with an id", method=method, path=path, status=200
            )
        return body

    def _iter_pages(self, path: str, page_size: int | None) -> Iterator[list[dict]]:
        """Yield the data of each page of a list, following links.next within the Space."""
        size = self.page_size if page_size is None else self._checked_page_size(page_size)
        url: str | None = self.space_url + path
        params: dict | None = {"page_size": size}
        while url is not None:
            path = urlsplit(url).path
            body = self._json("GET", path, self._send("GET", url, params=params))
            data = body.get("data") if isinstance(body, dict) else None
            links = body.get("links") if isinstance(body, dict) else None
            if not isinstance(data, list) or not isinstance(links, dict):
                raise UnexpectedResponseError(
                    "the answer is not a list with data and links",
                    method="GET",
                    path=path,
                    status=200,
                )
            next_url = links.get("next")
            del body, links
            following = self._same_space(next_url, path) if next_url else None
            if following == url:
                raise UnexpectedResponseError(
                    "links.next points at the same page", method="GET", path=path, status=200
                )
            yield data
            del data
            url, params = following, None

    def _same_space(self, link: object, path: str) -> str:
        """Resolve a pagination link, refusing any that would carry credentials elsewhere."""
        if not isinstance(link, str):
            raise UnexpectedResponseError(
                "links.next is not a string", method="GET", path=path, status=200
            )
        url = urljoin(self.space_url + "/", link)
        parts = urlsplit(url)
        try:
            origin = (parts.scheme, parts.hostname, parts.port or _default_port(parts.scheme))
        except ValueError:
            origin = None
        if origin != self._origin:
            raise UnexpectedResponseError(
                "links.next points outside the Space; not following it",
                method="GET",
                path=path,
                status=200,
            )
        return url

    def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        json_body: dict | None = None,
        params: dict | None = None,
    ) -> requests.Response:
        """Send one request (urllib3 retries included), log it and map transport failures."""
        url = path_or_url if "://" in path_or_url else self.space_url + path_or_url
        path = urlsplit(url).path
        started = time.perf_counter()
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=self.timeout,
                allow_redirects=False,
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
                reason = "timed out" if _timed_out(exc) else "could not be completed"
                raise UnavailableError(
                    f"the request {reason} after {attempts} attempt(s) ({type(exc).__name__})",
                    method=method,
                    path=path,
                    maybe_applied=sent,
                ) from exc
            raise SignalWireError(
                f"the request failed ({type(exc).__name__})", method=method, path=path
            ) from exc
        retries = getattr(response.raw, "retries", None)
        attempts = len(getattr(retries, "history", ())) + 1
        logger.info(
            "%s %s %s in %.0f ms after %d attempt(s)",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            attempts,
        )
        return response

    def _json(self, method: str, path: str, response: requests.Response) -> Any:
        """Return the parsed body of a 2xx answer, or raise the typed error for the status."""
        status = response.status_code
        if 200 <= status < 300:
            try:
                return json.loads(response.content)
            except ValueError:
                raise UnexpectedResponseError(
                    "the body is not JSON",
                    method=method,
                    path=path,
                    status=status,
                    request_id=_request_id(response),
                ) from None
        raise _status_error(method, path, response)


def _default_port(scheme: str) -> int | None:
    """Give the port a URL scheme implies, so :443 and no port compare equal."""
    return {"https": 443, "http": 80}.get(scheme)


def _timed_out(exc: BaseException) -> bool:
    """Tell whether a transport failure was a timeout."""
    return any(isinstance(item, (requests.Timeout, TimeoutError)) for item in _error_chain(exc))


def _request_id(response: requests.Response) -> str | None:
    """Read SignalWire's request id from an answer, when it sent one."""
    for header in REQUEST_ID_HEADERS:
        value = response.headers.get(header)
        if value:
            return value[:200]
    return None


def _status_error(method: str, path: str, response: requests.Response) -> SignalWireError:
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


def build_client() -> SignalWireClient:
    """Make a client from the SIGNALWIRE_* settings as they are now (never at import time)."""
    from django.conf import settings

    return SignalWireClient(
        space_url=settings.SIGNALWIRE_SPACE_URL,
        project_id=settings.SIGNALWIRE_PROJECT_ID,
        api_token=settings.SIGNALWIRE_API_TOKEN,
        connect_timeout=settings.SIGNALWIRE_CONNECT_TIMEOUT,
        read_timeout=settings.SIGNALWIRE_READ_TIMEOUT,
        retries=settings.SIGNALWIRE_RETRIES,
        backoff_factor=settings.SIGNALWIRE_RETRY_BACKOFF,
        max_retry_wait=settings.SIGNALWIRE_RETRY_MAX_WAIT,
        page_size=settings.SIGNALWIRE_SYNC_PAGE_SIZE,
    )
