"""Sandbox lists page like SignalWire's: page_size, page_token, absolute links, keyset order."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures_sandbox import Api, errors_by_attribute

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")


def walk(api: Api, url: str) -> list[dict]:
    """Follow links.next from url; return the pages' bodies."""
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = pages[-1]["links"].get("next")
    return pages


def make_rooms(api: Api, count: int, prefix: str = "room") -> list[dict]:
    """Create rooms over HTTP."""
    return [
        api.post("/api/video/rooms", json={"name": f"{prefix}_{i}"}).json() for i in range(count)
    ]


def test_exact_page_counts_and_links(api, sandbox_server):
    rooms = make_rooms(api, 125)
    pages = walk(api, "/api/video/rooms?page_size=50")
    assert [len(page["data"]) for page in pages] == [50, 50, 25]
    assert [room["id"] for page in pages for room in page["data"]] == [r["id"] for r in rooms]
    first, middle, last = pages
    assert "prev" not in first["links"]
    assert "next" not in last["links"]
    assert "prev" in middle["links"] and "prev" in last["links"]
    base = f"{sandbox_server.url}/api/video/rooms"
    assert first["links"]["self"] == f"{base}?page_size=50"
    for page in pages:
        for link in page["links"].values():
            assert link.startswith(base + "?")
        assert page["links"]["first"] == f"{base}?page_size=50"
    query = parse_qs(urlsplit(first["links"]["next"]).query)
    assert query["page_number"] == ["1"] and query["page_size"] == ["50"]
    assert query["page_token"][0]
    assert parse_qs(urlsplit(middle["links"]["next"]).query)["page_number"] == ["2"]
    assert middle["links"]["self"] == first["links"]["next"]


def test_prev_link_leads_back(api):
    make_rooms(api, 35)
    pages = walk(api, "/api/video/rooms?page_size=10")
    assert [len(page["data"]) for page in pages] == [10, 10, 10, 5]
    for index in range(1, 4):
        back = api.get(pages[index]["links"]["prev"]).json()
        assert back["data"] == pages[index - 1]["data"]


def test_exact_multiple_has_no_empty_last_page(api):
    make_rooms(api, 20)
    pages = walk(api, "/api/video/rooms?page_size=10")
    assert [len(page["data"]) for page in pages] == [10, 10]
    assert walk(api, "/api/video/conferences") == [
        {
            "links": {
                "self": f"{api.base}/api/video/conferences",
                "first": f"{api.base}/api/video/conferences?page_size=50",
            },
            "data": [],
        }
    ]


def test_default_page_size_is_50(api, sandbox):
    sandbox.seed(conferences=120, seed=1)
    pages = walk(api, "/api/video/conferences")
    assert [len(page["data"]) for page in pages] == [50, 50, 20]


@pytest.mark.parametrize("size", ["0", "1001", "-1", "abc", "2.5", ""])
def test_page_size_out_of_range_is_422(api, size):
    for path in ("/api/video/rooms", "/api/video/conferences"):
        errors = errors_by_attribute(api.get(f"{path}?page_size={size}"))
        assert list(errors) == ["page_size"]


def test_page_size_bounds_are_accepted(api, sandbox):
    sandbox.seed(rooms=1005, seed=2)
    assert len(api.get("/api/video/rooms?page_size=1").json()["data"]) == 1
    pages = walk(api, "/api/video/rooms?page_size=1000")
    assert [len(page["data"]) for page in pages] == [1000, 5]


def test_bad_page_tokens_are_422(api, sandbox):
    sandbox.seed(conferences=3, rooms=3, seed=1)
    room_next = api.get("/api/video/rooms?page_size=1").json()["links"]["next"]
    token = parse_qs(urlsplit(room_next).query)["page_token"][0]
    for bad in ("garbage", token[:-2] + "xx", token + "x", "e30.AAAA"):
        errors = errors_by_attribute(api.get(f"/api/video/rooms?page_number=1&page_token={bad}"))
        assert errors == {"page_token": "Page token is invalid"}
    # A token for the room list does not page the conference list.
    errors = errors_by_attribute(api.get(f"/api/video/conferences?page_token={token}"))
    assert errors == {"page_token": "Page token is invalid"}
    errors = errors_by_attribute(api.get("/api/video/rooms?page_number=2"))
    assert errors == {"page_token": "Page token must be present"}
    errors = errors_by_attribute(api.get("/api/video/rooms?page_number=-1&page_size=0"))
    assert set(errors) == {"page_number", "page_size"}


def test_listing_is_consistent_while_rooms_come_and_go(api, sandbox):
    originals = make_rooms(api, 150, "orig")
    survivors = {room["id"] for room in originals}
    seen: list[str] = []
    url = "/api/video/rooms?page_size=20"
    step = 0
    while url:
        page = api.get(url).json()
        seen += [room["id"] for room in page["data"]]
        url = page["links"].get("next")
        step += 1
        # Between pages: new rooms appear, and rooms behind and ahead of the cursor go away.
        make_rooms(api, 3, f"new{step}")
        for victim in (originals[step * 7], originals[-step * 3]):
            if victim["id"] in survivors:
                assert api.delete(f"/api/video/rooms/{victim['id']}").status_code == 204
                survivors.discard(victim["id"])
    assert len(seen) == len(set(seen)), "a room was listed twice"
    missing = survivors - set(seen)
    assert not missing, f"{len(missing)} rooms that existed throughout were skipped"
    for room_id in seen:
        assert room_id in sandbox.rooms or room_id not in survivors


def test_deleting_the_last_item_of_a_page_keeps_the_cursor(api):
    rooms = make_rooms(api, 30)
    first = api.get("/api/video/rooms?page_size=10").json()
    api.delete(f"/api/video/rooms/{first['data'][-1]['id']}")
    second = api.get(first["links"]["next"]).json()
    assert [room["id"] for room in second["data"]] == [room["id"] for room in rooms[10:20]]


def test_conference_token_list_pages(api):
    conference = api.post("/api/video/conferences", json={"display_name": "A"}).json()
    pages = walk(api, f"/api/video/conferences/{conference['id']}/conference_tokens?page_size=1")
    assert [page["data"][0]["name"] for page in pages] == ["moderator", "guest"]
    assert "next" not in pages[1]["links"] and "prev" in pages[1]["links"]
    errors = errors_by_attribute(
        api.get(f"/api/video/conferences/{conference['id']}/conference_tokens?page_size=5000")
    )
    assert list(errors) == ["page_size"]


def test_links_follow_the_host_header(api, sandbox):
    make_rooms(api, 3)
    response = api.get("/api/video/rooms?page_size=1", headers={"Host": "example.test:8443"})
    links = response.json()["links"]
    assert links["next"].startswith("http://example.test:8443/api/video/rooms?")
    assert links["self"] == "http://example.test:8443/api/video/rooms?page_size=1"


def test_starts_after_and_ends_before_filter(api):
    api.post("/api/video/rooms", json={"name": "early", "join_from": "2030-01-01"})
    api.post(
        "/api/video/rooms",
        json={"name": "late", "join_from": "2030-06-01", "join_until": "2030-06-02"},
    )
    api.post("/api/video/rooms", json={"name": "open"})
    names = [r["name"] for r in api.get("/api/video/rooms?starts_after=2030-03-01").json()["data"]]
    assert names == ["late"]
    page = api.get("/api/video/rooms?ends_before=2030-07-01T00:00:00Z&page_size=1").json()
    assert [r["name"] for r in page["data"]] == ["late"]
    assert "next" not in page["links"]
    errors = errors_by_attribute(api.get("/api/video/rooms?starts_after=soon"))
    assert list(errors) == ["starts_after"]


def test_page_of_1000_is_fast(api, sandbox):
    sandbox.seed(conferences=20_000, seed=5)
    started = time.perf_counter()
    page = api.get("/api/video/conferences?page_size=1000").json()
    later = api.get(page["links"]["next"]).json()
    assert len(later["data"]) == 1000
    assert time.perf_counter() - started < 2.0
