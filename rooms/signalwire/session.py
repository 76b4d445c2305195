"""The HTTP session of one SignalWire Space: auth, retries, deadlines, answer caps, errors.

`SpaceSession` sends one request at a time with a pooled `requests.Session` and Basic
auth, urllib3 retries that never repeat a write the server may have acted on, a
wall-clock deadline on every call (connect, retries and body included) and a cap on the
bytes of an answer, and turns every failure into the typed errors of
`rooms.signalwire.errors`. Pagination lives in rooms.signalwire.pages, the resource calls
in rooms.signalwire.client.
"""

from __future__ import annotations

import functools
import http.cookiejar
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Self, TypeVar, cast
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import (
    HTTPError,
)

from rooms.observations import observe
from rooms.signalwire import transport
from rooms.signalwire.answers import Answer, request_id_of, status_error
from rooms.signalwire.errors import (
    ConfigurationError,
    RemoteCallInTransactionError,
    SignalWireError,
    UnavailableError,
    UnexpectedResponseError,
)
from rooms.signalwire.retry import (
    SpaceRetry,
    error_chain,
    transport_facts,
)
from rooms.signalwire.schema import PAGE_SIZE_MAX, PAGE_SIZE_MIN
from rooms.signalwire.urls import SpaceURLError, normalise_space_url

logger = logging.getLogger("rooms.signalwire")

logger = logging.getLogger("rooms.signalwire")


API = "/api/video"


# Methods whose repetition cannot change the outcome: retried on read errors and 5xx.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})




# A create that fails ambiguously is looked up and then tried at most this many times.
CREATE_ATTEMPTS = 3


TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.RetryError,
    requests.exceptions.ChunkedEncodingError,
)






PROFILES = ("interactive", "background")


# Bytes read from the socket at a time while an answer's size is checked against the cap.
READ_CHUNK = 64 * 1024


@functools.cache
def user_agent() -> str:
    """Name the portal and its version to SignalWire, so its support can tell us apart."""
    try:
        from portal import __version__ as version
    except Exception:  # the client also runs outside the Django project (benchmarks)
        version = "0"
    return f"room-portal/{version}"



def quote_segment(value: str) -> str:
    """Quote an id or name as a single path segment, so it cannot walk to another path."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id or name must be a non-empty string")
    return quote(value, safe="")


_T = TypeVar("_T")


def one_call(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a client method that sends several requests under one call deadline."""

    @functools.wraps(method)
    def wrapper(self: SpaceSession, *args: Any, **kwargs: Any) -> _T:
        with transport.call_budget(self.deadline):
            return method(self, *args, **kwargs)

    return wrapper


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
        # Django marks the blocks a TestCase opens; the attribute is not in its stubs.
        if blocks and not getattr(blocks[-1], "_from_testcase", False):
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


def default_port(scheme: str) -> int | None:
    """Give the port a URL scheme implies, so :443 and no port compare equal."""
    return {"https": 443, "http": 80}.get(scheme)


def _timed_out(exc: BaseException) -> bool:
    """Tell whether a transport failure was a timeout."""
    return any(isinstance(item, (requests.Timeout, TimeoutError)) for item in error_chain(exc))


class SpaceSession:
    """Send requests to one SignalWire Space's Video API; plain data in and out, typed errors."""

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
        self._origin = (parts.scheme, parts.hostname, parts.port or default_port(parts.scheme))
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

    def __enter__(self) -> Self:
        """Use the client in a with block so its connections are released."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release the pooled connections when the with block ends."""
        self.close()

    # --- plumbing ---------------------------------------------------------------------

    @staticmethod
    def _checked_page_size(page_size: int) -> int:
        """Keep page sizes inside what the API accepts."""
        if not isinstance(page_size, int) or not PAGE_SIZE_MIN <= page_size <= PAGE_SIZE_MAX:
            raise ConfigurationError(
                f"page size must be between {PAGE_SIZE_MIN} and {PAGE_SIZE_MAX}"
            )
        return page_size

    @one_call
    def _create(
        self, path: str, data: dict[str, Any], lookup: Callable[[str], dict[str, Any] | None]
    ) -> dict[str, Any]:
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
        raise status_error("DELETE", path, answer)

    def _object(
        self, method: str, path: str, *, json_body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a request whose answer is one API object (a dict with an id)."""
        body = self._json(method, path, self._send(method, path, json_body=json_body))
        if not isinstance(body, dict) or "id" not in body:
            raise UnexpectedResponseError(
                "the answer is not an object with an id", method=method, path=path, status=200
            )
        return body

    def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
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
                    # requests hands the object to urllib3, which reads it as its Timeout.
                    timeout=cast(Any, transport.DeadlineTimeout(
                        connect=self.timeout[0], read=self.timeout[1], deadline=call.deadline
                    )),
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as exc:
                attempts, sent = transport_facts(exc)
                elapsed = (time.perf_counter() - started) * 1000
                observe("signalwire_request", (method, "error"), elapsed / 1000)
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
        answer = Answer(response, body)
        observe("signalwire_request", (method, str(response.status_code)), call_seconds(started))
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
            request_id=request_id_of(response),
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

    def _json(self, method: str, path: str, answer: Answer) -> Any:
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
                    request_id=request_id_of(answer),
                ) from None
        raise status_error(method, path, answer)


def call_seconds(started: float) -> float:
    """Seconds since a perf_counter reading."""
    return time.perf_counter() - started
