"""Sandbox streams: RTMP/RTMPS outputs of rooms and conferences, validated like SignalWire."""

from __future__ import annotations

import pytest

from sandbox import SandboxSpace
from tests.fixtures_sandbox import Api, errors_by_attribute

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")

YOUTUBE = "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl"


def make_owner(api: Api, kind: str, **fields) -> dict:
    """Create a room or a conference over HTTP."""
    if kind == "rooms":
        return api.post("/api/video/rooms", json={"name": "studio", **fields}).json()
    return api.post("/api/video/conferences", json={"display_name": "Town Hall", **fields}).json()


def test_room_stream_crud(api):
    room = make_owner(api, "rooms", quality="1080p")
    created = api.post(f"/api/video/rooms/{room['id']}/streams", json={"url": YOUTUBE})
    assert created.status_code == 201, created.text
    stream = created.json()
    assert stream["url"] == YOUTUBE and stream["stream_type"] == "rtmp"
    assert (stream["width"], stream["height"], stream["fps"]) == (1920, 1080, 20)
    assert stream["created_at"] == stream["updated_at"]
    listed = api.get(f"/api/video/rooms/{room['id']}/streams").json()
    assert listed["data"] == [stream] and "next" not in listed["links"]
    assert api.get(f"/api/video/streams/{stream['id']}").json() == stream
    new_url = "rtmps://live-api-s.facebook.com:443/rtmp/FB-123"
    updated = api.put(f"/api/video/streams/{stream['id']}", json={"url": new_url})
    assert updated.status_code == 200
    assert updated.json()["url"] == new_url and updated.json()["stream_type"] == "rtmps"
    assert updated.json()["updated_at"] > stream["updated_at"]
    assert updated.json()["created_at"] == stream["created_at"]
    assert api.delete(f"/api/video/streams/{stream['id']}").status_code == 204
    assert api.get(f"/api/video/streams/{stream['id']}").status_code == 404
    assert api.delete(f"/api/video/streams/{stream['id']}").status_code == 404
    assert api.get(f"/api/video/rooms/{room['id']}/streams").json()["data"] == []


def test_conference_stream_create_answers_200_and_lists_only_its_own(api):
    first = make_owner(api, "conferences")
    second = make_owner(api, "conferences", display_name="Other")
    created = api.post(f"/api/video/conferences/{first['id']}/streams", json={"url": YOUTUBE})
    assert created.status_code == 200, created.text
    assert (created.json()["width"], created.json()["height"]) == (1280, 720)
    mine = api.get(f"/api/video/conferences/{first['id']}/streams").json()["data"]
    assert [s["id"] for s in mine] == [created.json()["id"]]
    assert api.get(f"/api/video/conferences/{second['id']}/streams").json()["data"] == []


@pytest.mark.parametrize(
    ("body", "attribute", "message"),
    [
        ({}, "url", "Url must be present"),
        ({"url": None}, "url", "Url must be present"),
        ({"url": ""}, "url", "Url must be present"),
        ({"url": 5}, "url", "Url must be a string"),
        ({"url": "https://youtube.com/live"}, "url", "Url must be a valid RTMP or RTMPS URL"),
        ({"url": "rtmp://"}, "url", "Url must be a valid RTMP or RTMPS URL"),
        ({"url": "rtmp://host/ key"}, "url", "Url must be a valid RTMP or RTMPS URL"),
        ({"url": "rtmp://host:99999/x"}, "url", "Url must be a valid RTMP or RTMPS URL"),
        ({"url": YOUTUBE, "width": 1920}, "width", "Width is not a permitted parameter"),
    ],
)
def test_bad_stream_bodies_get_422_on_the_field(api, body, attribute, message):
    room = make_owner(api, "rooms")
    response = api.post(f"/api/video/rooms/{room['id']}/streams", json=body)
    assert errors_by_attribute(response) == {attribute: message}
    stream = api.post(f"/api/video/rooms/{room['id']}/streams", json={"url": YOUTUBE}).json()
    response = api.put(f"/api/video/streams/{stream['id']}", json=body)
    assert errors_by_attribute(response) == {attribute: message}
    assert api.get(f"/api/video/streams/{stream['id']}").json()["url"] == YOUTUBE


def test_upper_case_schemes_and_missing_bodies(api):
    room = make_owner(api, "rooms")
    response = api.post(f"/api/video/rooms/{room['id']}/streams", json={"url": "RTMPS://x.tv/a"})
    assert response.status_code == 201 and response.json()["stream_type"] == "rtmps"
    # The stream operations list 422, not 400, for a body that is missing or not an object.
    missing = {"url": "Url must be present"}
    assert errors_by_attribute(api.post(f"/api/video/rooms/{room['id']}/streams")) == missing
    stream = f"/api/video/streams/{response.json()['id']}"
    assert errors_by_attribute(api.put(stream)) == missing
    for body in ("{", "[]", "null"):
        refused = {None: "Body must be a JSON object"}
        assert errors_by_attribute(api.put(stream, data=body)) == refused, body
        conference = make_owner(api, "conferences")
        created = api.post(f"/api/video/conferences/{conference['id']}/streams", data=body)
        assert errors_by_attribute(created) == refused, body


def test_unknown_owners(api):
    missing = "4d7f1c9e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
    assert api.post(f"/api/video/rooms/{missing}/streams", json={"url": YOUTUBE}).status_code == 404
    response = api.post(f"/api/video/conferences/{missing}/streams", json={"url": YOUTUBE})
    assert errors_by_attribute(response) == {"id": "Conference does not exist"}
    for kind in ("rooms", "conferences"):
        listed = api.get(f"/api/video/{kind}/{missing}/streams")
        assert listed.status_code == 200 and listed.json()["data"] == []
    # A room's streams take a UUID; a conference's any string (so nothing is listed).
    malformed = api.get("/api/video/rooms/null,null/streams")
    assert errors_by_attribute(malformed) == {"id": "Id must be a valid UUID"}
    listed = api.get("/api/video/conferences/null,null/streams")
    assert listed.status_code == 200 and listed.json()["data"] == []


@pytest.mark.parametrize("kind", ["rooms", "conferences"])
def test_deleting_the_owner_removes_its_streams(api, sandbox, kind):
    owner = make_owner(api, kind)
    other = make_owner(api, kind, **({"name": "other"} if kind == "rooms" else {}))
    ids = [
        api.post(f"/api/video/{kind}/{o['id']}/streams", json={"url": YOUTUBE}).json()["id"]
        for o in (owner, owner, other)
    ]
    assert api.delete(f"/api/video/{kind}/{owner['id']}").status_code == 204
    assert [api.get(f"/api/video/streams/{i}").status_code for i in ids] == [404, 404, 200]
    assert sandbox.state()["streams"] == 1


def test_seeding_puts_streams_on_some_owners_deterministically(api, sandbox):
    first, second = SandboxSpace(), SandboxSpace()
    first.seed(conferences=300, rooms=300, seed=4)
    second.seed(conferences=300, rooms=300, seed=4)
    assert first.streams == second.streams
    owners = {stream["owner"] for stream in first.streams.values()}
    assert {kind for kind, _ in owners} == {"room", "conference"}
    assert 20 < len(owners) < 120
    assert all(s["url"].startswith(("rtmp://", "rtmps://")) for s in first.streams.values())
    sandbox.seed(rooms=200, seed=4)
    room_id = next(o for k, o in (s["owner"] for s in sandbox.streams.values()) if k == "room")
    served = api.get(f"/api/video/rooms/{room_id}/streams").json()["data"]
    assert served and all(s["id"] in sandbox.streams for s in served)
