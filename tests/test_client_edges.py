"""SignalWire client edge cases the sandbox Space cannot produce, through `responses`.

Everything the sandbox can do (operations, pagination, faults, retries) is tested over real
HTTP in test_client.py; here only malformed answers, foreign links, request-id headers,
403s, configuration and the retry policy's arithmetic.
"""

from types import SimpleNamespace

import pytest
import responses
from urllib3.exceptions import MaxRetryError, ProtocolError

from rooms.signalwire.client import SignalWireClient, build_client
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

SPACE = "https://example.signalwire.com"
TOKEN = "PTsecret-api-token-0123456789"
CONFERENCES = f"{SPACE}/api/video/conferences"


@pytest.fixture
def client():
    """Give a client for a fake Space with retries off, so each test sees one request."""
    with SignalWireClient(
        space_url="example.signalwire.com", project_id="proj", api_token=TOKEN, retries=0
    ) as made:
        yield made


def page(data, next_url=None):
    """Build a list answer as the API shapes it."""
    links = {"self": CONFERENCES, "first": CONFERENCES}
    if next_url:
        links["next"] = next_url
    return {"links": links, "data": data}


@responses.activate
def test_bare_host_becomes_https_and_requests_carry_auth_timeouts_and_agent(client):
    responses.get(f"{CONFERENCES}/c1", json={"id": "c1", "name": "one"})
    assert client.space_url == SPACE
    assert client.get_conference("c1") == {"id": "c1", "name": "one"}
    request = responses.calls[0].request
    assert request.url == f"{CONFERENCES}/c1"
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("room-portal/")
    timeout = request.req_kwargs["timeout"]
    assert (timeout.connect_timeout, timeout.read_limit) == (5.0, 30.0)
    assert 119 < timeout.total <= 120  # what is left of the call's 120 s deadline


@responses.activate
def test_plain_http_to_a_remote_host_is_refused_before_any_request():
    with pytest.raises(ConfigurationError) as caught:
        SignalWireClient(space_url="http://example.com", project_id="p", api_token=TOKEN)
    assert "https" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"project_id": ""},
        {"api_token": ""},
        {"space_url": ""},
        {"space_url": "https://example.signalwire.com/api"},
        {"page_size": 0},
        {"page_size": 1001},
        {"read_timeout": 0},
        {"retries": -1},
    ],
)
def test_unusable_settings_raise_configuration_error(overrides):
    kwargs = {"space_url": SPACE, "project_id": "p", "api_token": TOKEN, **overrides}
    with pytest.raises(ConfigurationError):
        SignalWireClient(**kwargs)


def test_loopback_http_is_allowed_for_the_sandbox():
    made = SignalWireClient(space_url="http://127.0.0.1:8765", project_id="p", api_token=TOKEN)
    assert made.space_url == "http://127.0.0.1:8765"
    assert TOKEN not in repr(made)
    made.close()


def test_build_client_reads_settings_at_call_time(settings):
    settings.SIGNALWIRE_SPACE_URL = "other.signalwire.com"
    settings.SIGNALWIRE_PROJECT_ID = "p1"
    settings.SIGNALWIRE_API_TOKEN = TOKEN
    settings.SIGNALWIRE_READ_TIMEOUT = 7
    settings.SIGNALWIRE_SYNC_PAGE_SIZE = 200
    made = build_client()
    assert made.space_url == "https://other.signalwire.com"
    assert made.timeout[1] == 7.0
    assert made.page_size == 200
    settings.SIGNALWIRE_SPACE_URL = "http://example.com"
    with pytest.raises(ConfigurationError):
        build_client()


@responses.activate
def test_a_body_that_is_not_json_is_an_unexpected_response(client):
    responses.get(f"{CONFERENCES}/c1", body="<html>gateway</html>", status=200)
    with pytest.raises(UnexpectedResponseError) as caught:
        client.get_conference("c1")
    assert caught.value.status == 200
    assert caught.value.path == "/api/video/conferences/c1"


@responses.activate
def test_an_object_without_id_is_an_unexpected_response(client):
    responses.get(f"{CONFERENCES}/c1", json={"name": "no id"})
    with pytest.raises(UnexpectedResponseError):
        client.get_conference("c1")


@responses.activate
def test_a_list_without_data_is_an_unexpected_response(client):
    responses.get(CONFERENCES, json={"links": {"self": CONFERENCES}})
    with pytest.raises(UnexpectedResponseError) as caught:
        list(client.list_conferences())
    assert caught.value.method == "GET"


@responses.activate
def test_a_next_link_to_another_host_is_never_followed(client):
    responses.get(CONFERENCES, json=page([{"id": "c1"}], "https://evil.example.com/steal"))
    with pytest.raises(UnexpectedResponseError) as caught:
        list(client.list_conferences())
    assert "outside the Space" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_a_next_link_to_another_port_or_scheme_is_never_followed(client):
    responses.get(CONFERENCES, json=page([], "http://example.signalwire.com/api/video/x"))
    with pytest.raises(UnexpectedResponseError):
        list(client.iter_conference_pages())
    responses.replace(
        responses.GET, CONFERENCES, json=page([], "https://example.signalwire.com:8443/x")
    )
    with pytest.raises(UnexpectedResponseError):
        list(client.iter_conference_pages())


@responses.activate
def test_next_links_on_the_space_are_followed_with_the_default_port_spelled_out(client):
    second = f"{SPACE}:443/api/video/conferences?page_size=1&page_token=t2"
    responses.get(f"{CONFERENCES}?page_size=1000", json=page([{"id": "c1"}], second))
    # Followed as its path and query on the Space's own origin.
    responses.get(f"{CONFERENCES}?page_size=1&page_token=t2", json=page([{"id": "c2"}]))
    assert [c["id"] for c in client.list_conferences()] == ["c1", "c2"]


@responses.activate
def test_the_request_id_is_carried_into_the_error(client):
    responses.get(
        f"{CONFERENCES}/gone",
        json={"error": "Not Found"},
        status=404,
        headers={"X-Request-Id": "req-123"},
    )
    with pytest.raises(NotFoundError) as caught:
        client.get_conference("gone")
    error = caught.value
    assert (error.method, error.path, error.status, error.request_id) == (
        "GET",
        "/api/video/conferences/gone",
        404,
        "req-123",
    )
    assert str(error) == "GET /api/video/conferences/gone: HTTP 404: Not Found (request id req-123)"
    assert not error.retryable


@responses.activate
def test_the_signalwire_request_id_header_is_read_too(client):
    responses.put(
        f"{CONFERENCES}/c1",
        json={"error": "Internal Server Error"},
        status=500,
        headers={"X-Signalwire-Request-Id": "sw-9"},
    )
    with pytest.raises(UnavailableError) as caught:
        client.update_conference("c1", {"display_name": "x"})
    assert caught.value.request_id == "sw-9"
    assert caught.value.retryable


@responses.activate
def test_504_is_retried_for_get_but_not_for_post():
    with SignalWireClient(
        space_url=SPACE, project_id="p", api_token=TOKEN, retries=2, backoff_factor=0.001
    ) as patient:
        responses.get(f"{CONFERENCES}/c1", status=504)
        with pytest.raises(UnavailableError) as caught:
            patient.get_conference("c1")
        assert caught.value.status == 504
        assert len(responses.calls) == 3
        responses.post(f"{SPACE}/api/video/room_tokens", status=504)
        with pytest.raises(UnavailableError):
            patient.create_room_token({"room_name": "r"})
        assert len(responses.calls) == 4


@responses.activate
def test_403_means_the_token_lacks_the_video_scope(client):
    responses.get(f"{CONFERENCES}/c1", json={"error": "Forbidden"}, status=403)
    with pytest.raises(AuthenticationError) as caught:
        client.get_conference("c1")
    assert "Video scope" in str(caught.value)
    assert TOKEN not in str(caught.value)


@responses.activate
def test_400_is_a_non_field_validation_error(client):
    responses.post(CONFERENCES, json={"error": "Bad Request"}, status=400)
    with pytest.raises(ValidationError) as caught:
        client.create_conference({"name": "x", "display_name": "X"})
    assert caught.value.non_field_errors == ["Bad Request"]
    assert caught.value.field_errors == {}


@responses.activate
def test_422_entries_without_attribute_are_non_field_errors(client):
    errors = [
        {"type": "validation_error", "code": "c", "message": "Name is taken", "attribute": "name"},
        {"type": "validation_error", "code": "c", "message": "Too many rooms", "url": "u"},
    ]
    responses.post(f"{SPACE}/api/video/rooms", json={"errors": errors}, status=422)
    with pytest.raises(ValidationError) as caught:
        client.create_room({"name": "x"})
    assert caught.value.field_errors == {"name": ["Name is taken"]}
    assert caught.value.non_field_errors == ["Too many rooms"]
    assert "Name is taken" in str(caught.value)


@responses.activate
def test_a_room_token_answer_without_token_is_unexpected(client):
    responses.post(f"{SPACE}/api/video/room_tokens", json={"nope": 1})
    with pytest.raises(UnexpectedResponseError):
        client.create_room_token({"room_name": "r"})


@responses.activate
def test_an_undocumented_status_is_unexpected(client):
    responses.get(f"{CONFERENCES}/c1", status=302, headers={"Location": "https://evil.example"})
    with pytest.raises(UnexpectedResponseError) as caught:
        client.get_conference("c1")
    assert caught.value.status == 302
    assert len(responses.calls) == 1


def test_ids_cannot_walk_to_other_paths(client):
    with responses.RequestsMock() as mocked:
        mocked.get(f"{CONFERENCES}/..%2Frooms", json={"id": "x"})
        client.get_conference("../rooms")
    with pytest.raises(ValueError):
        client.get_conference("")


def test_every_error_is_a_signalwire_error_and_names_its_request():
    error = RateLimitedError(method="POST", path="/api/video/rooms", status=429, retry_after=3)
    assert isinstance(error, SignalWireError)
    assert error.retryable
    assert str(error).startswith("POST /api/video/rooms: HTTP 429: ")
    assert "retry after 3s" in str(error)


# --- the retry policy, checked on urllib3's own objects ------------------------------


def retry(**overrides):
    """Build the policy the client mounts, with small numbers."""
    made = SignalWireClient(
        space_url=SPACE,
        project_id="p",
        api_token=TOKEN,
        retries=overrides.pop("retries", 4),
        backoff_factor=overrides.pop("backoff_factor", 0.01),
        max_retry_wait=overrides.pop("max_retry_wait", 2.0),
    )
    made.close()
    return made.retry


def fake_response(status, headers=None):
    """Stand in for a urllib3 response: only status and headers are read."""
    return SimpleNamespace(
        status=status, headers=headers or {}, get_redirect_location=lambda: False
    )


def test_post_is_retried_only_on_429_and_503():
    policy = retry()
    for status in (429, 500, 502, 503, 504):
        assert policy.is_retry("GET", status)
        assert policy.is_retry("PUT", status)
        assert policy.is_retry("DELETE", status)
    assert policy.is_retry("POST", 429)
    assert policy.is_retry("POST", 503)
    for status in (500, 502, 504, 404, 422):
        assert not policy.is_retry("POST", status)
    assert not policy.is_retry("GET", 404)


def test_post_read_errors_are_not_retried_but_get_read_errors_are():
    policy = retry()
    error = ProtocolError("Connection aborted.")
    with pytest.raises(ProtocolError) as caught:
        policy.increment("POST", "/api/video/rooms", error=error)
    assert len(caught.value.signalwire_history) == 1
    assert policy.increment("GET", "/api/video/rooms", error=error).read == 3


def test_retry_after_beyond_the_cap_stops_retrying():
    policy = retry(max_retry_wait=2.0)
    with pytest.raises(MaxRetryError):
        policy.increment("GET", "/x", response=fake_response(429, {"Retry-After": "5"}))
    within = policy.increment("GET", "/x", response=fake_response(429, {"Retry-After": "1"}))
    assert within.next_delay == 1.0
    assert within.waited == 1.0
    with pytest.raises(MaxRetryError):
        within.increment("GET", "/x", response=fake_response(429, {"Retry-After": "1.5"}))


def test_the_accumulated_wait_never_exceeds_the_cap():
    policy = retry(retries=50, backoff_factor=0.5, max_retry_wait=3.0)
    waited = 0.0
    with pytest.raises(MaxRetryError):
        while True:
            policy = policy.increment("GET", "/x", response=fake_response(503))
            waited += policy.next_delay
            assert policy.waited == pytest.approx(waited)
            assert waited <= 3.0
    assert waited == pytest.approx(3.0)


def test_429_without_retry_after_still_backs_off():
    policy = retry(backoff_factor=0.25)
    assert policy.increment("POST", "/x", response=fake_response(429)).next_delay >= 0.25


def test_an_http_date_retry_after_is_understood():
    policy = retry(max_retry_wait=30.0)
    soon = "Wed, 21 Oct 2015 07:28:00 GMT"  # in the past: retry at once
    assert (
        policy.increment("GET", "/x", response=fake_response(503, {"Retry-After": soon})).next_delay
        < 1
    )
