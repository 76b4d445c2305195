"""The SignalWire client against a hostile or broken Space, over real HTTP on loopback.

Each test scripts a real server (tests.hostile_space): pagination links that try to carry
the API token to a second server (which counts the credentials it receives), loops,
endless and dripping answers, and a Space that never answers in time.
"""

from __future__ import annotations

import time

import pytest

from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import UnavailableError, UnexpectedResponseError
from tests.hostile_space import HostileSpace, self_signed_tls
from tests.waiting import wait_until

TOKEN = "hostile-test-api-token-5e1f"
CONFERENCES = "/api/video/conferences"


@pytest.fixture
def witness():
    """A second server on another port: it must never receive a request."""
    server = HostileSpace().start()
    yield server
    server.stop()


@pytest.fixture
def space():
    """The Space under test; each test sets its `answer`."""
    server = HostileSpace().start()
    yield server
    server.stop()


def client_for(space: HostileSpace, **overrides) -> SignalWireClient:
    """A client of the hostile Space with short budgets unless a test says otherwise."""
    options = {
        "space_url": space.url,
        "project_id": "proj",
        "api_token": TOKEN,
        "retries": 0,
        "backoff_factor": 0.01,
        "read_timeout": 10.0,
        "deadline": 10.0,
        **overrides,
    }
    return SignalWireClient(**options)


def row(number: int) -> dict:
    return {"id": f"c{number}", "name": f"room-{number}"}


# --- pagination links never carry the token elsewhere -----------------------------------


def foreign_links(p1: int, p2: int) -> dict[str, str]:
    """links.next values that each try to reach the witness on port p2 from the Space on p1."""
    api = CONFERENCES
    return {
        "backslash": f"http://127.0.0.1:{p2}\\@127.0.0.1:{p1}{api}?page=2",
        "backslash path": f"/\\127.0.0.1:{p2}{api}?page=2",
        "userinfo to the witness": f"http://127.0.0.1:{p1}@127.0.0.1:{p2}{api}?page=2",
        "userinfo before the space": f"http://127.0.0.1:{p2}@127.0.0.1:{p1}{api}?page=2",
        "fullwidth colon": f"http://127.0.0.1\uff1a{p2}{api}?page=2",
        "percent-encoded colon": f"http://127.0.0.1%3A{p2}{api}?page=2",
        "percent-encoded backslash": f"http://127.0.0.1:{p2}%5C@127.0.0.1:{p1}{api}?page=2",
        "IDN full stops": f"http://127\u30020\u30020\u30021:{p2}{api}?page=2",
        "IDN fullwidth letter": f"http://\uff4cocalhost:{p2}{api}?page=2",
        "protocol-relative": f"//127.0.0.1:{p2}{api}?page=2",
        "other port": f"http://127.0.0.1:{p2}{api}?page=2",
        "localhost alias": f"http://localhost:{p2}{api}?page=2",
        "tab in authority": f"http://127.0.0.1:{p1}\t@127.0.0.1:{p2}{api}?page=2",
    }


VARIANTS = list(foreign_links(1, 2))


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_next_link_never_sends_credentials_to_another_server(space, witness, variant):
    link = foreign_links(space.port, witness.port)[variant]
    space.answer = lambda h: h.send_page([row(1)], link)

    with client_for(space) as client, pytest.raises(UnexpectedResponseError) as caught:
        list(client.iter_conference_pages())

    assert witness.requests == []
    assert witness.credentials_received == 0
    assert len(space.requests) == 1
    assert "links.next" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_link_on_the_space_is_followed_as_its_path_and_query_only(space, witness):
    def answer(h):
        if h.query.get("page_token") is None:
            h.send_page([row(1)], f"{space.url}{CONFERENCES}?page_size=1&page_token=t2")
        elif h.query["page_token"] == "t2":
            h.send_page([row(2)], f"{CONFERENCES}?page_size=1&page_token=t3")
        else:
            h.send_page([row(3)])

    space.answer = answer
    with client_for(space) as client:
        names = [c["name"] for c in client.list_conferences()]

    assert names == ["room-1", "room-2", "room-3"]
    assert [r["query"].get("page_token") for r in space.requests] == [None, "t2", "t3"]
    assert space.credentials_received == 3
    assert witness.requests == []


def test_a_link_to_another_listing_of_the_space_is_refused(space):
    space.answer = lambda h: h.send_page([row(1)], "/api/video/rooms?page_token=x")
    with client_for(space) as client, pytest.raises(UnexpectedResponseError) as caught:
        list(client.iter_conference_pages())
    assert "another listing" in str(caught.value)
    assert len(space.requests) == 1


# --- loops and endless listings ---------------------------------------------------------


def test_a_loop_back_to_the_first_page_stops_at_once(space):
    def answer(h):
        if "page_token" not in h.query:
            h.send_page([row(1)], f"{CONFERENCES}?page_token=B")
        else:
            h.send_page([row(2)], f"{CONFERENCES}?page_size={h.query.get('page_size', 1000)}")

    space.answer = answer
    with client_for(space) as client, pytest.raises(UnexpectedResponseError) as caught:
        list(client.iter_conference_pages())
    assert "loop" in str(caught.value)
    assert len(space.requests) == 2


def test_a_loop_between_later_pages_stops_at_once(space):
    following = {"B": "C", "C": "B"}

    def answer(h):
        token = h.query.get("page_token")
        h.send_page(
            [row(len(space.requests))], f"{CONFERENCES}?page_token={following.get(token, 'B')}"
        )

    space.answer = answer
    with client_for(space) as client, pytest.raises(UnexpectedResponseError) as caught:
        list(client.iter_conference_pages())
    assert "loop" in str(caught.value)
    assert [r["query"].get("page_token") for r in space.requests] == [None, "B", "C"]


def test_the_same_cursor_with_a_changing_extra_parameter_is_a_loop(space):
    def answer(h):
        n = len(space.requests)
        h.send_page([row(n)], f"{CONFERENCES}?page_number=1&page_token=T&junk={n}")

    space.answer = answer
    with client_for(space) as client, pytest.raises(UnexpectedResponseError):
        list(client.iter_conference_pages())
    assert len(space.requests) == 2


def test_an_endless_listing_of_fresh_pages_stops_where_the_first_page_bounds_it(space):
    def answer(h):
        n = len(space.requests)
        h.send_page([row(n * 10 + i) for i in range(10)], f"{CONFERENCES}?page_token=p{n}")

    space.answer = answer
    with client_for(space, max_list_rows=100) as client:
        pages = client.iter_conference_pages(page_size=10)
        with pytest.raises(UnexpectedResponseError) as caught:
            for _ in pages:
                pass
    # 100 rows of 10 per page, plus one page of slack for rows added meanwhile.
    assert len(space.requests) == 11
    assert "stopped reading it" in str(caught.value)


def test_a_count_in_the_first_answer_bounds_the_listing(space):
    def answer(h):
        n = len(space.requests)
        h.send_page(
            [row(n * 10 + i) for i in range(10)], f"{CONFERENCES}?page_token=p{n}", total=30
        )

    space.answer = answer
    with client_for(space) as client, pytest.raises(UnexpectedResponseError):
        list(client.iter_conference_pages(page_size=10))
    # 30 rows (and a page of slack) at 10 a page: the fifth page's next link is refused.
    assert len(space.requests) == 5


def test_rows_past_the_listing_bound_stop_it(space):
    space.answer = lambda h: h.send_page(
        [row(i) for i in range(150)], f"{CONFERENCES}?page_token=x"
    )
    with (
        client_for(space, max_list_rows=100) as client,
        pytest.raises(UnexpectedResponseError) as caught,
    ):
        list(client.iter_conference_pages(page_size=10))
    assert "past 100 rows" in str(caught.value)
    assert len(space.requests) == 1


# --- the size of an answer --------------------------------------------------------------


def test_an_endless_chunked_answer_is_cut_off_at_the_cap(space):
    space.answer = lambda h: h.endless_chunks()
    started = time.monotonic()
    with client_for(space, max_response_bytes=1024 * 1024) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            client.get_conference("c1")
    assert "larger than the 1048576-byte limit" in str(caught.value)
    assert time.monotonic() - started < 5
    # The client hung up: the server stopped writing soon after the cap.
    wait_until(lambda: space.disconnects, timeout=5, message="the server to see the hang-up")
    assert space.disconnects == 1
    assert space.bytes_sent < 64 * 1024 * 1024


def test_an_answer_declaring_a_body_past_the_cap_is_refused_unread(space):
    space.answer = lambda h: h.declare_huge_body(length=10**12)
    started = time.monotonic()
    with client_for(space) as client, pytest.raises(UnexpectedResponseError) as caught:
        client.get_conference("c1")
    assert "larger than" in str(caught.value)
    assert time.monotonic() - started < 2


def test_an_answer_just_under_the_cap_is_read(space):
    filler = "x" * (1024 * 1024 - 100)
    space.answer = lambda h: h.send_json({"id": "c1", "description": filler})
    with client_for(space, max_response_bytes=1024 * 1024) as client:
        assert client.get_conference("c1")["description"] == filler


# --- the deadline of a call -------------------------------------------------------------


def assert_ends_at_deadline(started: float, deadline: float) -> None:
    elapsed = time.monotonic() - started
    assert deadline - 0.1 <= elapsed < deadline + 1.0, elapsed


def test_a_body_dripping_one_byte_a_second_ends_at_the_deadline(space):
    space.answer = lambda h: h.drip_body(length=200, every=1.0)
    started = time.monotonic()
    with client_for(space, deadline=2.5) as client, pytest.raises(UnavailableError) as caught:
        client.get_conference("c1")
    assert_ends_at_deadline(started, 2.5)
    assert "deadline" in str(caught.value)
    assert caught.value.maybe_applied


def test_headers_dripping_one_byte_a_second_end_at_the_deadline(space):
    space.answer = lambda h: h.drip_headers(every=1.0)
    started = time.monotonic()
    with client_for(space, deadline=2.5) as client, pytest.raises(UnavailableError) as caught:
        client.get_conference("c1")
    assert_ends_at_deadline(started, 2.5)
    assert "deadline" in str(caught.value)


def test_a_silent_space_ends_at_the_deadline_not_the_read_timeout(space):
    space.answer = lambda h: h.stall(8)
    started = time.monotonic()
    with client_for(space, deadline=1.5, read_timeout=30) as client:
        with pytest.raises(UnavailableError) as caught:
            client.update_conference("c1", {"display_name": "x"})
    assert_ends_at_deadline(started, 1.5)
    assert "deadline" in str(caught.value)
    assert caught.value.maybe_applied  # the PUT was sent: SignalWire may have applied it


def test_retries_stop_at_the_deadline(space):
    space.answer = lambda h: h.send_json({"error": "busy"}, status=503)
    started = time.monotonic()
    with client_for(space, retries=50, backoff_factor=0.2, max_retry_wait=60, deadline=1.5) as c:
        with pytest.raises(UnavailableError):
            c.get_conference("c1")
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 0.5, elapsed
    assert 2 <= len(space.requests) < 20


def test_a_create_and_its_lookups_share_one_deadline(space):
    # Every POST stalls past its timeout, so the client looks the name up and tries again.
    def answer(h):
        if h.command == "POST":
            h.stall(3)
        else:
            h.send_page([])

    space.answer = answer
    started = time.monotonic()
    with client_for(space, read_timeout=1.0, deadline=2.5) as client:
        with pytest.raises(UnavailableError):
            client.create_conference({"name": "allhands", "display_name": "All-hands"})
    assert_ends_at_deadline(started, 2.5)


def test_an_empty_or_null_next_link_ends_the_listing_and_a_non_string_one_is_refused(space):
    for end in ("", None):
        space.answer = lambda h, end=end: h.send_page([row(1)], end)
        with client_for(space) as client:
            assert [c["id"] for c in client.list_conferences()] == ["c1"]
    space.answer = lambda h: h.send_page([row(1)], ["/api/video/conferences?page_token=x"])
    with client_for(space) as client, pytest.raises(UnexpectedResponseError) as caught:
        list(client.list_conferences())
    assert "not a string" in str(caught.value)


def test_over_tls_a_dripping_body_also_ends_at_the_deadline(tmp_path, monkeypatch):
    context, cert = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    server = HostileSpace(lambda h: h.drip_body(length=200, every=1.0), tls=context).start()
    try:
        started = time.monotonic()
        with client_for(server, deadline=2.5) as client:
            with pytest.raises(UnavailableError) as caught:
                client.get_conference("c1")
        assert_ends_at_deadline(started, 2.5)
        assert "deadline" in str(caught.value)
        assert len(server.requests) == 1  # it went through TLS to the server
    finally:
        server.stop()
