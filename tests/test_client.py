"""SignalWire client against the sandbox Space over real HTTP: operations, paging, faults.

The sandbox's request log is the witness: each test checks how many requests really
reached the Space, so a retry that did not happen (or one too many) shows.
"""

import logging
import time
from urllib.parse import quote_plus, urlencode

import pytest

from rooms.signalwire.client import SignalWireClient, build_client
from rooms.signalwire.errors import (
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)
from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_PROJECT_ID

CONFERENCES = "/api/video/conferences"
ROOMS = "/api/video/rooms"
SESSIONS = "/api/video/room_sessions"


@pytest.fixture
def client(sandbox):
    """Give a client built from settings that point at the fresh sandbox Space."""
    with build_client() as made:
        yield made


def sent(space, method, path=None):
    """Count the requests the sandbox received with this method (and exact path)."""
    return sum(
        1
        for entry in space.requests
        if entry["method"] == method and (path is None or entry["path"] == path)
    )


def new_conference(client, name="portal-allhands", **extra):
    """Create a conference the way the portal does: the portal picks the name."""
    return client.create_conference({"name": name, "display_name": "All-hands", **extra})


# --- operations --------------------------------------------------------------------


def test_conference_lifecycle(client, sandbox):
    created = new_conference(client, size="large")
    assert created["name"] == "portal-allhands"
    assert created["size"] == "large"
    assert created["id"] in sandbox.conferences

    assert client.get_conference(created["id"]) == created
    assert client.find_conference_by_name("portal-allhands")["id"] == created["id"]
    assert client.find_conference_by_name("no-such-conference") is None
    assert [c["id"] for c in client.list_conferences()] == [created["id"]]

    updated = client.update_conference(
        created["id"], {"display_name": "All hands", "description": "Monthly"}
    )
    assert (updated["display_name"], updated["description"]) == ("All hands", "Monthly")
    assert sandbox.conferences[created["id"]]["display_name"] == "All hands"
    assert sent(sandbox, "PUT") == 1

    assert client.delete_conference(created["id"]) is None
    assert created["id"] not in sandbox.conferences
    with pytest.raises(NotFoundError) as caught:
        client.get_conference(created["id"])
    assert caught.value.status == 404
    assert caught.value.path == f"{CONFERENCES}/{created['id']}"


def test_conference_tokens(client, sandbox):
    conference = new_conference(client)
    tokens = client.list_conference_tokens(conference["id"])
    assert len(tokens) == 2
    assert all(token["token"] and isinstance(token["scopes"], list) for token in tokens)

    first = tokens[0]
    assert client.get_conference_token(first["id"]) == first
    reset = client.reset_conference_token(first["id"])
    assert reset["id"] == first["id"]
    assert reset["token"] != first["token"]
    assert client.get_conference_token(first["id"])["token"] == reset["token"]


def test_room_lifecycle_and_room_tokens(client, sandbox):
    room = client.create_room({"name": "war_room", "display_name": "War Room", "max_members": 8})
    assert room["max_members"] == 8
    assert room["id"] in sandbox.rooms

    assert client.get_room(room["id"]) == room
    assert client.get_room_by_name("war_room")["id"] == room["id"]
    with pytest.raises(NotFoundError):
        client.get_room_by_name("no_such_room")
    assert [r["id"] for r in client.list_rooms()] == [room["id"]]

    updated = client.update_room(room["id"], {"display_name": "Ops", "max_members": 12})
    assert (updated["display_name"], updated["max_members"]) == ("Ops", 12)

    token = client.create_room_token(
        {"room_name": "war_room", "user_name": "alice", "permissions": ["room.self.audio_mute"]}
    )
    assert isinstance(token, str) and token.count(".") == 2

    assert client.delete_room(room["id"]) is None
    assert room["id"] not in sandbox.rooms
    with pytest.raises(NotFoundError):
        client.delete_room(room["id"])


def test_pagination_follows_next_links_one_request_per_page(client, sandbox):
    sandbox.seed(conferences=250, rooms=0, seed=7)
    sandbox.clear_requests()

    pages = list(client.iter_conference_pages(page_size=20))

    assert [len(page) for page in pages] == [20] * 12 + [10]
    ids = [conference["id"] for page in pages for conference in page]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == set(sandbox.conferences)
    assert sent(sandbox, "GET", CONFERENCES) == 13


def test_room_pagination_streams_every_room(client, sandbox):
    sandbox.seed(conferences=0, rooms=45, seed=3)
    sandbox.clear_requests()
    names = [room["name"] for room in client.list_rooms(page_size=10)]
    assert len(names) == len(set(names)) == 45
    assert sent(sandbox, "GET", ROOMS) == 5


def test_listing_is_lazy(client, sandbox):
    sandbox.seed(conferences=30, rooms=0, seed=1)
    sandbox.clear_requests()
    conferences = client.list_conferences(page_size=10)
    assert sent(sandbox, "GET") == 0
    next(conferences)
    assert sent(sandbox, "GET") == 1
    conferences.close()


def test_a_filtered_listing_sends_its_filters_once_and_reads_every_matching_page(
    client, sandbox
):
    sandbox.seed(rooms=6, sessions=80, seed=4)
    name = max(
        {s["name"] for s in sandbox.room_sessions.values()},
        key=lambda n: sum(s["name"] == n for s in sandbox.room_sessions.values()),
    )
    expected = {i for i, s in sandbox.room_sessions.items() if s["name"] == name}
    assert len(expected) > 4  # enough for several pages of two
    sandbox.clear_requests()

    pages = list(client.iter_pages(SESSIONS, params={"room_name": name}, page_size=2))

    assert {row["id"] for page in pages for row in page} == expected
    assert all(row["name"] == name for page in pages for row in page)
    asked = [entry["query"] for entry in sandbox.requests if entry["path"] == SESSIONS]
    assert len(asked) == len(pages) == -(-len(expected) // 2)
    assert asked[0] == urlencode({"room_name": name, "page_size": 2})
    assert all(f"room_name={quote_plus(name)}" in query for query in asked[1:])


def test_any_object_can_be_read_and_deleted_by_its_path(client, sandbox):
    room = client.create_room({"name": "portal-by-path"})
    path = f"{ROOMS}/{room['id']}"

    assert client.get_object(path) == client.get_room(room["id"])
    assert client.delete_object(path) is None
    assert room["id"] not in sandbox.rooms
    with pytest.raises(NotFoundError):
        client.get_object(path)


# --- errors that must not be retried -----------------------------------------------


def test_wrong_token_is_an_authentication_error_at_once(sandbox, sandbox_server):
    with SignalWireClient(
        space_url=sandbox_server.url, project_id=SANDBOX_PROJECT_ID, api_token="wrong-token"
    ) as wrong:
        with pytest.raises(AuthenticationError) as caught:
            list(wrong.list_conferences())
    assert caught.value.status == 401
    assert "Video scope" in str(caught.value)
    assert "wrong-token" not in str(caught.value)
    assert len(sandbox.requests) == 1


def test_422_maps_messages_to_fields(client, sandbox):
    with pytest.raises(ValidationError) as caught:
        client.create_conference({"name": "bad name!", "display_name": "X", "quality": "4k"})
    error = caught.value
    assert error.status == 422
    assert set(error.field_errors) >= {"name", "quality"}
    assert all(error.field_errors[field] for field in ("name", "quality"))
    assert sandbox.conferences == {}
    assert sent(sandbox, "POST") == 1


def test_a_post_that_gets_500_is_not_retried(client, sandbox):
    sandbox.inject_fault(500, methods=["POST"])
    with pytest.raises(UnavailableError) as caught:
        client.create_room({"name": "huddle"})
    assert caught.value.status == 500
    assert caught.value.method == "POST"
    assert sent(sandbox, "POST") == 1
    assert sent(sandbox, "GET") == 0


@pytest.mark.parametrize("status", [500, 502])
def test_a_post_that_gets_a_gateway_or_server_error_is_not_retried(client, sandbox, status):
    conference = new_conference(client)
    token_id = client.list_conference_tokens(conference["id"])[0]["id"]
    sandbox.clear_requests()
    sandbox.inject_fault(status, methods=["POST"])
    with pytest.raises(UnavailableError):
        client.reset_conference_token(token_id)
    assert sent(sandbox, "POST") == 1


# --- faults the client rides out -------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_get_recovers_from_server_errors(client, sandbox, status):
    conference = new_conference(client)
    sandbox.clear_requests()
    sandbox.inject_fault(status, count=2, methods=["GET"])
    assert client.get_conference(conference["id"])["id"] == conference["id"]
    assert sent(sandbox, "GET") == 3


def test_put_and_delete_recover_from_server_errors(client, sandbox):
    conference = new_conference(client)
    sandbox.clear_requests()
    sandbox.inject_fault(502, count=1, methods=["PUT"])
    client.update_conference(conference["id"], {"display_name": "Renamed"})
    assert sent(sandbox, "PUT") == 2
    sandbox.inject_fault(503, count=1, methods=["DELETE"])
    client.delete_conference(conference["id"])
    assert sent(sandbox, "DELETE") == 2
    assert sandbox.conferences == {}


def test_429_with_retry_after_is_honoured(client, sandbox):
    sandbox.inject_fault(429, count=1, retry_after=1, methods=["GET"])
    started = time.monotonic()
    assert list(client.list_conferences()) == []
    assert time.monotonic() - started >= 0.9
    assert sent(sandbox, "GET") == 2


def test_429_without_retry_after_backs_off_and_recovers(client, sandbox):
    sandbox.inject_fault(429, count=2, methods=["GET"])
    assert list(client.list_rooms()) == []
    assert sent(sandbox, "GET") == 3


def test_post_is_retried_on_429_and_503_because_the_server_did_not_act(client, sandbox):
    sandbox.inject_fault(429, count=1, methods=["POST"])
    sandbox.inject_fault(503, count=1, methods=["POST"])
    room = client.create_room({"name": "lobby"})
    assert sent(sandbox, "POST") == 3
    assert list(sandbox.rooms) == [room["id"]]


def test_get_recovers_from_a_dropped_connection(client, sandbox):
    conference = new_conference(client)
    sandbox.clear_requests()
    sandbox.inject_fault("drop", count=1, methods=["GET"])
    assert client.get_conference(conference["id"])["id"] == conference["id"]
    assert sent(sandbox, "GET") == 2


def test_a_fraction_of_failures_does_not_break_a_long_listing(client, sandbox):
    sandbox.seed(conferences=200, rooms=0, seed=5)
    sandbox.inject_fault(503, fraction=0.2, methods=["GET"])  # seeded: repeatable
    ids = [c["id"] for c in client.list_conferences(page_size=10)]
    assert len(set(ids)) == 200


# --- giving up -----------------------------------------------------------------------


def test_retries_give_up_with_unavailable_after_the_allowed_attempts(client, sandbox, settings):
    sandbox.inject_fault(503, methods=["GET"])
    with pytest.raises(UnavailableError) as caught:
        client.get_room("whatever")
    assert caught.value.status == 503
    assert caught.value.retryable
    assert sent(sandbox, "GET") == settings.SIGNALWIRE_RETRIES + 1


def test_retry_after_beyond_the_cap_gives_up_at_once(client, sandbox):
    sandbox.inject_fault(429, retry_after=30, methods=["GET"])
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        list(client.list_conferences())
    assert time.monotonic() - started < 1
    assert caught.value.retry_after == 30
    assert caught.value.retryable
    assert sent(sandbox, "GET") == 1


def test_persistent_429_ends_rate_limited_within_the_cap(client, sandbox, settings):
    sandbox.inject_fault(429, methods=["GET"])
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        client.get_conference("whatever")
    assert time.monotonic() - started <= settings.SIGNALWIRE_RETRY_MAX_WAIT + 1
    assert caught.value.retry_after is None
    assert 2 <= sent(sandbox, "GET") <= settings.SIGNALWIRE_RETRIES + 1


def test_dropped_connections_end_unavailable(client, sandbox, settings):
    sandbox.inject_fault("drop", methods=["GET"])
    with pytest.raises(UnavailableError) as caught:
        client.get_conference("whatever")
    assert caught.value.status is None
    assert sent(sandbox, "GET") == settings.SIGNALWIRE_RETRIES + 1


def test_read_timeouts_end_unavailable(sandbox, sandbox_server):
    sandbox.set_latency(1.0)
    with SignalWireClient(
        space_url=sandbox_server.url,
        project_id=SANDBOX_PROJECT_ID,
        api_token=SANDBOX_API_TOKEN,
        read_timeout=0.2,
        retries=1,
        backoff_factor=0.01,
    ) as impatient:
        with pytest.raises(UnavailableError) as caught:
            impatient.get_conference("whatever")
    sandbox.set_latency(0)
    assert "timed out" in str(caught.value)
    assert caught.value.maybe_applied


def test_an_unreachable_space_is_unavailable_and_surely_not_applied():
    with SignalWireClient(
        space_url="http://127.0.0.1:9",
        project_id="p",
        api_token="t",
        retries=1,
        backoff_factor=0.01,
        connect_timeout=0.5,
    ) as nowhere:
        with pytest.raises(UnavailableError) as caught:
            nowhere.create_room({"name": "lobby"})
    assert not caught.value.maybe_applied
    assert caught.value.status is None


# --- ambiguous writes ------------------------------------------------------------------


def test_an_ambiguous_room_create_makes_exactly_one_room(client, sandbox):
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    room = client.create_room({"name": "studio", "display_name": "Studio"})
    assert list(sandbox.rooms) == [room["id"]]
    assert sent(sandbox, "POST") == 1
    assert sent(sandbox, "GET", f"{ROOMS}/studio") == 1


def test_an_ambiguous_conference_create_makes_exactly_one_conference(client, sandbox):
    sandbox.seed(conferences=40, rooms=0, seed=2)
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    conference = new_conference(client, name="portal-townhall")
    matching = [c for c in sandbox.conferences.values() if c["name"] == "portal-townhall"]
    assert [c["id"] for c in matching] == [conference["id"]]
    assert len(sandbox.conferences) == 41
    assert sent(sandbox, "POST") == 1


def test_a_create_dropped_before_processing_is_tried_again_once(client, sandbox):
    sandbox.inject_fault("drop", count=1, methods=["POST"])
    room = client.create_room({"name": "classroom"})
    assert list(sandbox.rooms) == [room["id"]]
    assert sent(sandbox, "POST") == 2


def test_a_create_that_keeps_dropping_gives_up_bounded(client, sandbox):
    sandbox.inject_fault("drop", methods=["POST"])
    with pytest.raises(UnavailableError) as caught:
        client.create_room({"name": "pairing"})
    assert caught.value.maybe_applied
    assert sandbox.rooms == {}
    assert sent(sandbox, "POST") == 3


def test_an_ambiguous_put_is_simply_repeated(client, sandbox):
    conference = new_conference(client)
    sandbox.clear_requests()
    sandbox.inject_fault("drop", count=1, methods=["PUT"], after_processing=True)
    updated = client.update_conference(conference["id"], {"display_name": "Again"})
    assert updated["display_name"] == "Again"
    assert sent(sandbox, "PUT") == 2


def test_an_ambiguous_delete_that_already_happened_succeeds(client, sandbox):
    room = client.create_room({"name": "helpdesk"})
    sandbox.inject_fault("drop", count=1, methods=["DELETE"], after_processing=True)
    assert client.delete_room(room["id"]) is None
    assert sandbox.rooms == {}
    assert sent(sandbox, "DELETE") == 2


# --- logging -------------------------------------------------------------------------


def test_one_info_line_per_request_with_status_and_attempts(client, sandbox, caplog):
    caplog.set_level(logging.INFO, logger="rooms.signalwire")
    sandbox.inject_fault(503, count=1, methods=["GET"])
    list(client.list_rooms())
    lines = [r.getMessage() for r in caplog.records if r.name == "rooms.signalwire"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET {ROOMS} 200 in ")
    assert lines[0].endswith("after 2 attempt(s)")


def test_no_secret_reaches_the_logs(client, sandbox, sandbox_server, caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="rooms.signalwire")
    caplog.set_level(logging.DEBUG)
    secrets = {SANDBOX_API_TOKEN}

    conference = new_conference(client)
    for token in client.list_conference_tokens(conference["id"]):
        secrets.add(token["token"])
        secrets.add(client.reset_conference_token(token["id"])["token"])
        secrets.add(client.get_conference_token(token["id"])["token"])
    room = client.create_room({"name": "war_room"})
    secrets.add(client.create_room_token({"room_name": "war_room", "user_name": "bob"}))
    client.update_room(room["id"], {"display_name": "Ops"})

    sandbox.inject_fault(503, count=1)
    sandbox.inject_fault(429, count=1, retry_after=1)
    sandbox.inject_fault("drop", count=1)
    client.get_room(room["id"])
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    client.create_room({"name": "lobby"})
    sandbox.inject_fault(500, count=1, methods=["POST"])
    with pytest.raises(UnavailableError):
        client.create_room({"name": "broken"})
    with pytest.raises(ValidationError):
        client.create_room({"name": "bad name"})
    sandbox.inject_fault(503)
    with pytest.raises(UnavailableError):
        client.get_room(room["id"])
    sandbox.clear_faults()
    with SignalWireClient(
        space_url=sandbox_server.url, project_id=SANDBOX_PROJECT_ID, api_token="wrong-token"
    ) as wrong:
        with pytest.raises(AuthenticationError) as caught:
            wrong.get_room(room["id"])
    secrets.add("wrong-token")
    client.delete_room(room["id"])
    client.delete_conference(conference["id"])

    captured = capsys.readouterr()
    outputs = [caplog.text, captured.out, captured.err, str(caught.value), repr(client)]
    assert any("urllib3" in r.name for r in caplog.records), "urllib3 debug was not captured"
    for secret in secrets:
        assert secret
        for output in outputs:
            assert secret not in output


def test_an_unanswering_redis_adds_no_wait_to_signalwire_calls(
    client, sandbox, settings, monkeypatch
):
    import socket

    from rooms import observations

    monkeypatch.setattr(observations, "_paused_until", 0.0, raising=False)  # reset after

    def five_calls() -> float:
        started = time.monotonic()
        for _ in range(5):
            list(client.list_rooms())
        return time.monotonic() - started

    usual = five_calls()
    # A Redis that takes the connection and never answers: worse than a closed port, which
    # refuses at once.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        unanswered = five_calls()
    assert unanswered - usual < 1.0
