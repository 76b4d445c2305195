"""The sandbox Space behaves like SignalWire's Video REST API: auth, CRUD, validation, tokens."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from typing import Any

import pytest
import requests

from rooms.signalwire import schema
from sandbox import (
    SandboxNotFound,
    SandboxServer,
    SandboxSpace,
    SandboxValidationError,
)
from tests.conftest import (
    SANDBOX_API_TOKEN,
    SANDBOX_B_API_TOKEN,
    SANDBOX_B_PROJECT_ID,
    SANDBOX_PROJECT_ID,
)
from tests.fixtures_sandbox import Api, errors_by_attribute
from tests.waiting import wait_until

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        None,
        (SANDBOX_PROJECT_ID, "wrong-token"),
        ("other-project", SANDBOX_API_TOKEN),
        ("", ""),
        (SANDBOX_PROJECT_ID, SANDBOX_API_TOKEN + "x"),
    ],
)
def test_bad_credentials_get_401(sandbox, sandbox_server, auth):
    client = Api(sandbox_server, auth=auth)
    for method, path in [("GET", "/api/video/conferences"), ("POST", "/api/video/rooms")]:
        response = client.request(method, path, json={"name": "x"})
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}
        assert response.headers["Content-Type"].startswith("application/json")
    assert sandbox.rooms == {}


def counts(space: SandboxSpace) -> dict[str, int]:
    """The conference, room and token counts of a Space's state."""
    state = space.state()
    return {key: state[key] for key in ("conferences", "rooms", "conference_tokens")}


def test_malformed_authorization_header_gets_401(sandbox, sandbox_server):
    for header in ["Basic !!!notbase64", "Bearer abc", "Basic " + base64.b64encode(b"x").decode()]:
        response = requests.get(
            f"{sandbox_server.url}/api/video/rooms", headers={"Authorization": header}, timeout=5
        )
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}


def test_token_with_colon_is_compared_whole():
    server = SandboxServer(port=0, project_id="p", api_token="a:b").start()
    try:
        assert requests.get(f"{server.url}/api/video/rooms", auth=("p", "a:b")).status_code == 200
        assert requests.get(f"{server.url}/api/video/rooms", auth=("p", "a")).status_code == 401
    finally:
        server.stop()


# --- several projects on one server --------------------------------------------------------


def test_each_project_keeps_its_own_rooms_and_conferences(api, api_b, sandbox, sandbox_b):
    room_a = api.post("/api/video/rooms", json={"name": "acme_lobby", "max_members": 5}).json()
    conference_a = api.post("/api/video/conferences", json={"display_name": "Acme"}).json()
    assert api_b.get("/api/video/rooms").json()["data"] == []
    assert api_b.get("/api/video/conferences").json()["data"] == []
    assert api_b.get(f"/api/video/rooms/{room_a['id']}").status_code == 404
    assert api_b.get("/api/video/rooms/acme_lobby").status_code == 404
    tokens_path = f"/api/video/conferences/{conference_a['id']}/conference_tokens"
    assert api_b.get(tokens_path).status_code == 404

    # The same name in the other project is another room, with its own settings.
    room_b = api_b.post("/api/video/rooms", json={"name": "acme_lobby", "max_members": 9})
    assert room_b.status_code == 200, room_b.text
    assert room_b.json()["id"] != room_a["id"]
    assert api.get("/api/video/rooms/acme_lobby").json()["max_members"] == 5
    assert api_b.get("/api/video/rooms/acme_lobby").json()["max_members"] == 9
    assert api_b.delete(f"/api/video/rooms/{room_b.json()['id']}").status_code == 204
    assert [room["name"] for room in api.get("/api/video/rooms").json()["data"]] == ["acme_lobby"]
    assert set(sandbox.conferences) == {conference_a["id"]} and sandbox_b.conferences == {}


@pytest.mark.parametrize(
    ("auth", "logged_by"),
    [
        ((SANDBOX_B_PROJECT_ID, SANDBOX_API_TOKEN), "b"),
        ((SANDBOX_PROJECT_ID, SANDBOX_B_API_TOKEN), "a"),
        ((SANDBOX_B_PROJECT_ID.upper(), SANDBOX_B_API_TOKEN), "a"),
        (("sandbox-project-c", SANDBOX_B_API_TOKEN), "a"),
    ],
)
def test_a_token_opens_only_its_own_project(sandbox, sandbox_b, sandbox_server, auth, logged_by):
    response = Api(sandbox_server, auth=auth).post("/api/video/rooms", json={"name": "x"})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}
    assert response.headers["WWW-Authenticate"] == 'Basic realm="api"'
    assert sandbox.rooms == {} and sandbox_b.rooms == {}
    # The project the credentials name logs the refusal (the first one, for a name unknown).
    logging, silent = (sandbox_b, sandbox) if logged_by == "b" else (sandbox, sandbox_b)
    assert [entry["status"] for entry in logging.requests] == [401]
    assert silent.requests == []


def test_each_project_logs_only_its_own_requests(api, api_b, sandbox, sandbox_b, sandbox_server):
    api.get("/api/video/rooms")
    api.get("/api/video/conferences")
    api_b.post("/api/video/rooms", json={"name": "only_b"})
    assert [(e["method"], e["path"]) for e in sandbox.requests] == [
        ("GET", "/api/video/rooms"),
        ("GET", "/api/video/conferences"),
    ]
    assert [(e["method"], e["path"], e["body"]) for e in sandbox_b.requests] == [
        ("POST", "/api/video/rooms", {"name": "only_b"})
    ]
    control = f"{sandbox_server.url}/__sandbox__/requests"
    over_http = requests.get(control, params={"project": SANDBOX_B_PROJECT_ID}, timeout=10)
    assert [e["path"] for e in over_http.json()["requests"]] == ["/api/video/rooms"]
    assert len(requests.get(control, timeout=10).json()["requests"]) == 2


def test_the_control_api_addresses_each_project(api, api_b, sandbox, sandbox_b, sandbox_server):
    base = f"{sandbox_server.url}/__sandbox__"
    b = {"project": SANDBOX_B_PROJECT_ID}
    seeded = requests.post(f"{base}/seed", params=b, json={"rooms": 4, "seed": 3}, timeout=10)
    assert seeded.status_code == 200 and seeded.json()["rooms"] == 4
    assert sandbox.rooms == {} and len(sandbox_b.rooms) == 4
    assert requests.get(f"{base}/state", timeout=10).json()["rooms"] == 0
    assert requests.get(f"{base}/state", params=b, timeout=10).json()["rooms"] == 4
    listed = requests.get(f"{base}/projects", timeout=10).json()["projects"]
    assert [(p["project_id"], p["rooms"]) for p in listed] == [
        (SANDBOX_PROJECT_ID, 0),
        (SANDBOX_B_PROJECT_ID, 4),
    ]
    assert SANDBOX_API_TOKEN not in str(listed) and SANDBOX_B_API_TOKEN not in str(listed)
    unknown = requests.get(f"{base}/state", params={"project": "nope"}, timeout=10)
    assert unknown.status_code == 404

    # A session started in B, ended with a recording: its media link downloads.
    started = requests.post(
        f"{base}/sessions", params=b, json={"room_name": "b_only", "record": True}, timeout=10
    )
    assert started.status_code == 200, started.text
    assert requests.get(f"{base}/sessions", timeout=10).json() == {"live": []}
    assert len(requests.get(f"{base}/sessions", params=b, timeout=10).json()["live"]) == 1
    ended = requests.post(f"{base}/sessions/{started.json()['id']}/end", params=b, timeout=10)
    assert ended.status_code == 200
    assert requests.post(f"{base}/sessions/{started.json()['id']}/end", timeout=10).status_code == (
        404
    )
    assert api.get("/api/video/room_recordings").json()["data"] == []
    recording = api_b.get("/api/video/room_recordings").json()["data"][0]
    media = requests.get(recording["uri"], timeout=10)
    assert media.status_code == 200 and media.headers["Content-Type"] == "video/mp4"

    assert requests.post(f"{base}/reset", params=b, timeout=10).status_code == 200
    assert sandbox_b.state()["rooms"] == 0 and sandbox_b.requests == []
    assert len(sandbox.requests) == 1  # A's own listing of recordings, still logged


def test_waiting_for_answers_covers_every_project(api, api_b, sandbox, sandbox_b, sandbox_server):
    sandbox_b.set_latency(3)
    slow = threading.Thread(target=api_b.get, args=("/api/video/rooms",))
    slow.start()
    try:
        # A's requests are answered while B's is still waiting on its latency.
        wait_until(lambda: not sandbox_server.wait_until_answered(timeout=0))
        assert api.get("/api/video/rooms").status_code == 200
        assert sandbox_b.requests == []
        assert sandbox_server.wait_until_answered(timeout=30)
        assert [entry["status"] for entry in sandbox_b.requests] == [200]
    finally:
        slow.join(30)


def test_a_project_added_while_serving_is_served_at_once():
    with SandboxServer(port=0, project_id="first", api_token="first-token") as server:
        space = server.add_project("later", "later-token")
        assert list(server.spaces) == ["first", "later"] and server.spaces["later"] is space
        assert server.space is server.spaces["first"]
        space.seed(rooms=2, seed=1)
        listed = requests.get(
            f"{server.url}/api/video/rooms", auth=("later", "later-token"), timeout=10
        ).json()["data"]
        assert sorted(room["id"] for room in listed) == sorted(space.rooms)
        first = requests.get(
            f"{server.url}/api/video/rooms", auth=("first", "first-token"), timeout=10
        )
        assert first.json()["data"] == []
        with pytest.raises(ValueError, match="already served"):
            server.add_project("later", "another-token")


# --- conferences --------------------------------------------------------------------------


def test_create_conference_answers_full_object_with_defaults(api, sandbox):
    response = api.post("/api/video/conferences", json={"display_name": "Acme All-hands"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    conference = response.json()
    assert list(conference) == list(schema.CONFERENCE_RESPONSE_FIELDS)
    assert UUID4.match(conference["id"])
    assert re.match(schema.NAME_PATTERN, conference["name"])
    assert conference["display_name"] == "Acme All-hands"
    assert conference["quality"] == "720p"
    assert conference["layout"] == "grid-responsive"
    assert conference["size"] == "medium"
    assert conference["enable_chat"] is True
    assert conference["description"] is None
    assert conference["join_from"] is None and conference["join_until"] is None
    assert conference["meta"] is None
    for field, colour in schema.COLOUR_DEFAULTS.items():
        assert conference[field] == colour
    assert STAMP.match(conference["created_at"])
    assert conference["created_at"] == conference["updated_at"]
    assert sandbox.conferences[conference["id"]] == conference


def test_create_conference_stores_given_fields(api):
    body = {
        "name": "globex_board-01",
        "display_name": "Globex Board",
        "description": "Quarterly board meeting",
        "join_from": "2030-01-01",
        "join_until": "2030-01-01T11:30:00+01:00",
        "quality": "1080p",
        "layout": "2x2",
        "size": "large",
        "record_on_start": True,
        "enable_room_previews": True,
        "enable_chat": False,
        "dark_primary": "#aabbcc",
    }
    conference = api.post("/api/video/conferences", json=body).json()
    assert conference["name"] == "globex_board-01"
    assert conference["join_from"] == "2030-01-01T00:00:00Z"
    assert conference["join_until"] == "2030-01-01T10:30:00Z"
    assert conference["dark_primary"] == "#aabbcc"
    assert conference["light_primary"] == "#044EF4"
    for key in ("quality", "layout", "size", "record_on_start", "enable_chat", "description"):
        assert conference[key] == body[key]
    assert api.get(f"/api/video/conferences/{conference['id']}").json() == conference


def test_generated_conference_names_are_unique(api):
    names = {
        api.post("/api/video/conferences", json={"display_name": "Same"}).json()["name"]
        for _ in range(5)
    }
    assert len(names) == 5


def test_update_conference_bumps_updated_at_every_time(api):
    conference = api.post("/api/video/conferences", json={"display_name": "One"}).json()
    stamps = [conference["updated_at"]]
    for display_name in ("Two", "Three", "Four"):
        response = api.put(
            f"/api/video/conferences/{conference['id']}", json={"display_name": display_name}
        )
        assert response.status_code == 200
        assert response.json()["display_name"] == display_name
        stamps.append(response.json()["updated_at"])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    final = api.get(f"/api/video/conferences/{conference['id']}").json()
    assert final["created_at"] == conference["created_at"]
    assert final["name"] == conference["name"]


def test_update_conference_keeps_omitted_fields(api):
    conference = api.post(
        "/api/video/conferences",
        json={"display_name": "A", "layout": "5up", "description": "kept"},
    ).json()
    updated = api.put(
        f"/api/video/conferences/{conference['id']}",
        json={"display_name": "B", "tone_on_entry_and_exit": False, "user_join_video_off": True},
    ).json()
    assert updated["layout"] == "5up" and updated["description"] == "kept"
    assert updated["tone_on_entry_and_exit"] is False and updated["user_join_video_off"] is True


def test_update_conference_rejects_name_and_requires_display_name(api):
    conference = api.post("/api/video/conferences", json={"display_name": "A"}).json()
    path = f"/api/video/conferences/{conference['id']}"
    errors = errors_by_attribute(api.put(path, json={"name": "renamed", "layout": "nope"}))
    assert errors == {
        "display_name": "Display name must be present",
        "name": "Name is not a permitted parameter",
        "layout": "Layout is not included in the list",
    }
    assert api.get(path).json() == conference


def test_delete_conference_answers_204_and_removes_tokens(api, sandbox):
    conference = api.post("/api/video/conferences", json={"display_name": "A"}).json()
    tokens = api.get(f"/api/video/conferences/{conference['id']}/conference_tokens").json()["data"]
    response = api.delete(f"/api/video/conferences/{conference['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"/api/video/conferences/{conference['id']}").status_code == 404
    for token in tokens:
        assert api.get(f"/api/video/conference_tokens/{token['id']}").status_code == 404
    assert sandbox.conference_tokens == {}
    assert api.delete(f"/api/video/conferences/{conference['id']}").status_code == 404


# --- validation ---------------------------------------------------------------------------


def test_conference_create_reports_every_invalid_field_at_once(api, sandbox):
    body = {
        "name": "has spaces!",
        "display_name": "x" * 201,
        "description": 42,
        "join_from": "yesterday",
        "quality": "4k",
        "layout": "circle",
        "size": "huge",
        "record_on_start": "yes",
        "enable_chat": 1,
        "dark_primary": "#12345",
        "light_background": "blue",
        "tone_on_entry_and_exit": True,
        "max_members": 10,
    }
    response = api.post("/api/video/conferences", json=body)
    errors = errors_by_attribute(response)
    assert errors == {
        "name": "Name is invalid",
        "display_name": "Display name is too long (maximum is 200 characters)",
        "description": "Description must be a string",
        "join_from": "Join from must be a valid RFC 3339 datetime",
        "quality": "Quality is not included in the list",
        "layout": "Layout is not included in the list",
        "size": "Size is not included in the list",
        "record_on_start": "Record on start must be a boolean",
        "enable_chat": "Enable chat must be a boolean",
        "dark_primary": "Dark primary is invalid",
        "light_background": "Light background is invalid",
        "tone_on_entry_and_exit": "Tone on entry and exit is not a permitted parameter",
        "max_members": "Max members is not a permitted parameter",
    }
    for error in response.json()["errors"]:
        assert error["type"] == "validation_error"
        assert error["code"] == "invalid_parameter"
        assert error["url"] == "https://signalwire.com/docs/apis/error-codes"
    assert sandbox.conferences == {}


@pytest.mark.parametrize(
    ("body", "attribute", "message"),
    [
        ({}, "display_name", "Display name must be present"),
        ({"display_name": "  "}, "display_name", "Display name must be present"),
        ({"display_name": None}, "display_name", "Display name must be present"),
        (
            {"display_name": "A", "name": "a" * 101},
            "name",
            "Name is too long (maximum is 100 characters)",
        ),
        ({"display_name": "A", "name": ""}, "name", "Name is invalid"),
        ({"display_name": "A", "name": "dots.are.bad"}, "name", "Name is invalid"),
        ({"display_name": "A", "description": "d" * 3001}, "description", None),
        ({"display_name": "A", "join_until": "2022-13-01"}, "join_until", None),
        ({"display_name": "A", "join_from": "2022-01-01T25:00:00Z"}, "join_from", None),
        ({"display_name": "A", "dark_success": "#GGGGGG"}, "dark_success", None),
        ({"display_name": "A", "quality": 720}, "quality", "Quality must be a string"),
        ({"display_name": "A", "meta": {}}, "meta", "Meta is not a permitted parameter"),
    ],
)
def test_conference_create_rejects(api, body, attribute, message):
    errors = errors_by_attribute(api.post("/api/video/conferences", json=body))
    assert attribute in errors
    if message:
        assert errors[attribute] == message


def test_join_from_must_be_before_join_until(api):
    errors = errors_by_attribute(
        api.post(
            "/api/video/conferences",
            json={"display_name": "A", "join_from": "2030-01-02", "join_until": "2030-01-01"},
        )
    )
    assert errors == {"join_until": "Join until must be after join from"}
    conference = api.post(
        "/api/video/conferences", json={"display_name": "A", "join_until": "2030-01-02"}
    ).json()
    errors = errors_by_attribute(
        api.put(
            f"/api/video/conferences/{conference['id']}",
            json={"display_name": "A", "join_from": "2030-01-03T00:00:00Z"},
        )
    )
    assert errors == {"join_until": "Join until must be after join from"}


def test_duplicate_names_are_taken(api):
    api.post("/api/video/conferences", json={"display_name": "A", "name": "standup"})
    errors = errors_by_attribute(
        api.post("/api/video/conferences", json={"display_name": "B", "name": "standup"})
    )
    assert errors == {"name": "Name has already been taken"}
    assert api.post("/api/video/rooms", json={"name": "lobby"}).status_code == 200
    errors = errors_by_attribute(api.post("/api/video/rooms", json={"name": "lobby"}))
    assert errors == {"name": "Name has already been taken"}


@pytest.mark.parametrize("data", [b"{not json", b'{"display_name": "A",}', b"\xff\xfe"])
def test_malformed_json_is_a_bad_request(api, sandbox, data):
    for path in ("/api/video/conferences", "/api/video/rooms", "/api/video/room_tokens"):
        response = api.post(path, data=data, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json() == {"error": "Bad Request"}
    assert set(sandbox.state().values()) == {0}


@pytest.mark.parametrize("payload", [[], ["display_name"], "text", 3, None])
def test_json_that_is_not_an_object_is_a_bad_request(api, payload):
    data = json.dumps(payload)
    for method, path in [("POST", "/api/video/conferences"), ("POST", "/api/video/rooms")]:
        response = api.request(method, path, data=data)
        assert response.status_code == 400
        assert response.json() == {"error": "Bad Request"}


def test_a_missing_required_body_is_a_bad_request(api):
    for method, path in [("POST", "/api/video/conferences"), ("POST", "/api/video/rooms")]:
        response = api.request(method, path)
        assert response.status_code == 400
        assert response.json() == {"error": "Bad Request"}
    errors = errors_by_attribute(api.post("/api/video/conferences", json={}))
    assert errors == {"display_name": "Display name must be present"}


def test_room_validation_reports_every_field(api, sandbox):
    body = {
        "display_name": ["not", "a", "string"],
        "max_members": 301,
        "remove_after_seconds_elapsed": 0,
        "quality": "480p",
        "layout": "grid",
        "remove_at": "2022-02-30",
        "record_on_start": None,
        "meta": {"blob": "x" * 2000},
        "sync_audio_video": "true",
        "fps": 30,
        "enable_chat": True,
    }
    errors = errors_by_attribute(api.post("/api/video/rooms", json=body))
    assert errors == {
        "name": "Name must be present",
        "display_name": "Display name must be a string",
        "max_members": "Max members must be less than or equal to 300",
        "remove_after_seconds_elapsed": (
            "Remove after seconds elapsed must be greater than or equal to 1"
        ),
        "quality": "Quality is not included in the list",
        "layout": "Layout is not included in the list",
        "remove_at": "Remove at must be a valid RFC 3339 datetime",
        "record_on_start": "Record on start must be a boolean",
        "meta": "Meta is too long (maximum is 2000 characters)",
        "sync_audio_video": "Sync audio video must be a boolean",
        "fps": "Fps is not a permitted parameter",
        "enable_chat": "Enable chat is not a permitted parameter",
    }
    assert sandbox.rooms == {}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_members", True, "Max members must be an integer"),
        ("max_members", "20", "Max members must be an integer"),
        ("max_members", 2.5, "Max members must be an integer"),
        ("max_members", 0, "Max members must be greater than or equal to 1"),
        ("remove_after_seconds_elapsed", 200001, None),
        ("meta", [1, 2], "Meta must be a JSON object"),
        ("meta", "{}", "Meta must be a JSON object"),
        ("name", "x" * 101, "Name is too long (maximum is 100 characters)"),
        ("name", "über", "Name is invalid"),
        ("enable_room_previews", 0, "Enable room previews must be a boolean"),
    ],
)
def test_room_create_rejects(api, field, value, message):
    body = {"name": "room_1", field: value}
    errors = errors_by_attribute(api.post("/api/video/rooms", json=body))
    assert list(errors) == [field]
    if message:
        assert errors[field] == message


def test_room_accepts_boundaries(api):
    for index, members in enumerate((1, 300)):
        room = api.post(
            "/api/video/rooms",
            json={
                "name": f"edge_{index}",
                "max_members": members,
                "remove_after_seconds_elapsed": 200000 if index else 1,
                "meta": {"k": "v" * 1980},
            },
        )
        assert room.status_code == 200, room.text
        assert room.json()["max_members"] == members


# --- rooms --------------------------------------------------------------------------------


def test_room_create_defaults_and_lookup_by_id_and_name(api):
    response = api.post("/api/video/rooms", json={"name": "acme_huddle"})
    assert response.status_code == 200
    room = response.json()
    assert list(room) == list(schema.ROOM_RESPONSE_FIELDS)
    assert room["display_name"] == "acme_huddle"
    assert room["max_members"] == 20
    assert room["fps"] == 20
    assert room["quality"] == "720p"
    assert room["layout"] == "grid-responsive"
    assert room["remove_at"] is None and room["remove_after_seconds_elapsed"] is None
    assert room["meta"] is None and room["description"] is None
    assert room["record_on_start"] is False and room["enable_room_previews"] is False
    assert api.get(f"/api/video/rooms/{room['id']}").json() == room
    assert api.get("/api/video/rooms/acme_huddle").json() == room
    assert api.get("/api/video/rooms/no_such_room").status_code == 404


def test_room_update_and_delete(api):
    room = api.post("/api/video/rooms", json={"name": "r1", "meta": {"a": 1}}).json()
    path = f"/api/video/rooms/{room['id']}"
    response = api.put(
        path,
        json={
            "display_name": "Room One",
            "max_members": 50,
            "meta": {"b": 2},
            "join_from": "2031-05-01",
            "sync_audio_video": True,
        },
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["display_name"] == "Room One" and updated["max_members"] == 50
    assert updated["meta"] == {"b": 2}
    assert updated["join_from"] == "2031-05-01T00:00:00Z"
    assert updated["updated_at"] > room["updated_at"]
    assert updated["name"] == "r1"
    errors = errors_by_attribute(api.put(path, json={"name": "r2"}))
    assert errors == {"name": "Name is not a permitted parameter"}
    assert api.put(path, json={}).status_code == 200
    response = api.delete(path)
    assert response.status_code == 204 and response.content == b""
    assert api.get(path).status_code == 404
    assert api.get("/api/video/rooms/r1").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/video/conferences/{id}"),
        ("PUT", "/api/video/conferences/{id}"),
        ("DELETE", "/api/video/conferences/{id}"),
        ("GET", "/api/video/conferences/{id}/conference_tokens"),
        ("GET", "/api/video/conference_tokens/{id}"),
        ("POST", "/api/video/conference_tokens/{id}/reset"),
        ("GET", "/api/video/rooms/{id}"),
        ("PUT", "/api/video/rooms/{id}"),
        ("DELETE", "/api/video/rooms/{id}"),
    ],
)
def test_unknown_ids_are_404(api, method, path):
    for unknown in ("2f0e4b6e-3c8e-4b7e-9a0f-1d2c3b4a5f6e", "not-a-uuid"):
        response = api.request(method, path.format(id=unknown), json={"display_name": "x"})
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found"}


def test_unknown_api_paths_are_404(api, sandbox_server):
    assert api.get("/api/video/nothing").status_code == 404
    assert api.request("PATCH", "/api/video/nothing").json() == {"error": "Not Found"}
    response = requests.get(f"{sandbox_server.url}/somewhere", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


# --- conference tokens ----------------------------------------------------------------------


def test_conference_gets_moderator_and_guest_tokens(api, sandbox):
    conference = api.post("/api/video/conferences", json={"display_name": "A"}).json()
    listing = api.get(f"/api/video/conferences/{conference['id']}/conference_tokens").json()
    tokens = {token["name"]: token for token in listing["data"]}
    assert set(tokens) == {"moderator", "guest"}
    assert tokens["moderator"]["scopes"] == list(schema.MODERATOR_PERMISSIONS)
    assert tokens["guest"]["scopes"] == list(schema.GUEST_PERMISSIONS)
    for token in tokens.values():
        assert re.fullmatch(r"vpt_[0-9a-f]{32}", token["token"])
        assert set(token) == {"id", "name", "token", "scopes"}
        assert api.get(f"/api/video/conference_tokens/{token['id']}").json() == token
        assert sandbox.conference_tokens[token["id"]]["conference_id"] == conference["id"]
    assert tokens["moderator"]["token"] != tokens["guest"]["token"]
    assert "next" not in listing["links"] and "prev" not in listing["links"]


def test_reset_conference_token_changes_only_the_value(api):
    conference = api.post("/api/video/conferences", json={"display_name": "A"}).json()
    tokens = api.get(f"/api/video/conferences/{conference['id']}/conference_tokens").json()
    guest = next(token for token in tokens["data"] if token["name"] == "guest")
    response = api.post(f"/api/video/conference_tokens/{guest['id']}/reset")
    assert response.status_code == 200
    reset = response.json()
    assert reset["token"] != guest["token"]
    assert {**reset, "token": guest["token"]} == guest
    assert api.get(f"/api/video/conference_tokens/{guest['id']}").json() == reset


# --- room tokens ----------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_room_token_is_a_signed_jwt_with_default_scopes(api, sandbox):
    before = int(time.time())
    response = api.post("/api/video/room_tokens", json={"room_name": "lobby", "user_name": "Ann"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert set(response.json()) == {"token"}
    assert token.count(".") == 2
    claims = sandbox.verify_room_token(token)
    assert claims == _claims(token)
    assert claims["r"] == "lobby" and claims["u"] == "Ann"
    assert claims["s"] == list(schema.DEFAULT_ROOM_TOKEN_PERMISSIONS)
    assert before <= claims["iat"] <= time.time()
    assert claims["exp"] == claims["iat"] + 3600
    assert UUID4.match(claims["jti"])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        sandbox.verify_room_token(forged)


def test_room_token_carries_window_scopes_and_expiry(api):
    body = {
        "room_name": "board",
        "user_name": "Chair",
        "permissions": ["room.self.audio_mute", "room.member.remove"],
        "join_from": "2030-01-01",
        "join_until": "2030-01-01T02:00:00Z",
    }
    claims = _claims(api.post("/api/video/room_tokens", json=body).json()["token"])
    assert claims["s"] == body["permissions"]
    assert claims["join_from"] == "2030-01-01T00:00:00Z"
    assert claims["join_until"] == "2030-01-01T02:00:00Z"
    assert claims["exp"] == 1893463200
    body["remove_at"] = "2030-01-01T03:00:00Z"
    claims = _claims(api.post("/api/video/room_tokens", json=body).json()["token"])
    assert claims["exp"] == 1893466800
    audience = api.post(
        "/api/video/room_tokens",
        json={"room_name": "board", "join_as": "audience", "permissions": ["room.lock"]},
    ).json()
    assert _claims(audience["token"])["s"] == []
    anonymous = _claims(api.post("/api/video/room_tokens", json={"room_name": "b"}).json()["token"])
    assert re.fullmatch(r"[A-Za-z0-9]+", anonymous["u"])


def test_room_token_validation(api):
    errors = errors_by_attribute(
        api.post(
            "/api/video/room_tokens",
            json={
                "user_name": "u" * 101,
                "permissions": ["room.self.audio_mute", "room.fly"],
                "join_as": "ghost",
                "media_allowed": "smell",
                "remove_after_seconds_elapsed": 0,
                "room_meta": "x",
                "auto_create_room": "no",
                "room_display_name": "d" * 201,
                "colour": "#FFFFFF",
            },
        )
    )
    assert set(errors) == {
        "room_name",
        "user_name",
        "permissions",
        "join_as",
        "media_allowed",
        "remove_after_seconds_elapsed",
        "room_meta",
        "auto_create_room",
        "room_display_name",
        "colour",
    }
    assert errors["room_name"] == "Room name must be present"
    errors = errors_by_attribute(api.post("/api/video/room_tokens", json={"room_name": "a b"}))
    assert errors == {"room_name": "Room name is invalid"}


# --- direct access (dashboard edits) --------------------------------------------------------


def test_direct_edits_are_seen_over_http_and_bump_updated_at(api, sandbox):
    conference = sandbox.create_conference({"display_name": "Dash", "name": "dash"})
    room = sandbox.create_room({"name": "dash_room"})
    edited = sandbox.update_conference(conference["id"], {"layout": "3x3", "name": "dash2"})
    assert edited["updated_at"] > conference["updated_at"]
    fetched = api.get(f"/api/video/conferences/{conference['id']}").json()
    assert fetched["layout"] == "3x3" and fetched["name"] == "dash2"
    sandbox.update_room(room["id"], {"max_members": 7})
    assert api.get("/api/video/rooms/dash_room").json()["max_members"] == 7
    sandbox.delete_room(room["id"])
    assert api.get(f"/api/video/rooms/{room['id']}").status_code == 404
    sandbox.delete_conference(conference["id"])
    listing = api.get("/api/video/conferences").json()
    assert listing["data"] == []


def test_direct_access_validates_unless_told_not_to(sandbox):
    with pytest.raises(SandboxValidationError) as caught:
        sandbox.create_conference({"display_name": "A", "layout": "hexagon"})
    assert caught.value.errors[0]["attribute"] == "layout"
    conference = sandbox.create_conference({"display_name": "A"})
    raw = sandbox.update_conference(
        conference["id"], {"layout": "hexagon", "new_field": 1}, validate=False
    )
    assert raw["layout"] == "hexagon" and raw["new_field"] == 1
    with pytest.raises(SandboxNotFound):
        sandbox.update_room("missing", {})
    with pytest.raises(KeyError):
        sandbox.delete_conference("missing")


def test_renaming_frees_the_old_name(sandbox):
    first = sandbox.create_room({"name": "alpha"})
    sandbox.update_room(first["id"], {"name": "beta"})
    assert sandbox.get_room("beta")["id"] == first["id"]
    second = sandbox.create_room({"name": "alpha"})
    assert second["id"] != first["id"]
    with pytest.raises(SandboxValidationError):
        sandbox.update_room(second["id"], {"name": "beta"})


# --- concurrency and seeding ----------------------------------------------------------------


def test_concurrent_creates_are_all_kept(api, sandbox, sandbox_server):
    failures: list[str] = []

    def worker(number: int) -> None:
        client = Api(sandbox_server)
        for index in range(10):
            response = client.post("/api/video/rooms", json={"name": f"t{number}_{index}"})
            if response.status_code != 200:
                failures.append(response.text)
            client.post("/api/video/conferences", json={"display_name": f"C {number}"})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert counts(sandbox) == {"conferences": 120, "rooms": 120, "conference_tokens": 240}
    seen = []
    url = "/api/video/rooms?page_size=7"
    while url:
        page = api.get(url).json()
        seen += [room["name"] for room in page["data"]]
        url = page["links"].get("next")
    assert sorted(seen) == sorted(f"t{n}_{i}" for n in range(12) for i in range(10))


def test_seeding_is_realistic_and_deterministic():
    first, second, other = SandboxSpace(), SandboxSpace(), SandboxSpace()
    first.seed(conferences=2000, rooms=500, seed=7)
    second.seed(conferences=2000, rooms=500, seed=7)
    other.seed(conferences=2000, rooms=500, seed=8)
    assert counts(first) == {"conferences": 2000, "rooms": 500, "conference_tokens": 4000}
    assert first.streams == second.streams and 0 < len(first.streams) < 2500 // 5
    assert first.conferences == second.conferences
    assert first.rooms == second.rooms
    assert first.conference_tokens == second.conference_tokens
    assert first.conferences != other.conferences
    names = [c["name"] for c in first.conferences.values()]
    assert len(set(names)) == 2000
    assert all(re.fullmatch(r"[a-z]+-[a-z-]+-\d{4,}", name) for name in names)
    conferences = list(first.conferences.values())
    assert len({c["layout"] for c in conferences}) > 3
    assert len({c["size"] for c in conferences}) == 3
    assert {c["quality"] for c in conferences} == {"720p", "1080p"}
    assert any(c["dark_primary"] != "#044EF4" for c in conferences)
    assert any(c["join_from"] for c in conferences)
    assert any(c["description"] for c in conferences)
    assert any(c["display_name"].startswith("Acme ") for c in conferences)
    for conference in conferences[:50]:
        for key in ("created_at", "updated_at"):
            assert STAMP.match(conference[key])
        if conference["join_from"]:
            assert conference["join_from"] < conference["join_until"]
    rooms = list(first.rooms.values())
    assert len({r["max_members"] for r in rooms}) > 3 and any(r["meta"] for r in rooms)


def test_seeded_data_is_served_and_tokens_belong_to_conferences(api, sandbox):
    sandbox.seed(conferences=30, rooms=20, seed=3)
    conferences = api.get("/api/video/conferences?page_size=100").json()["data"]
    rooms = api.get("/api/video/rooms?page_size=100").json()["data"]
    assert len(conferences) == 30 and len(rooms) == 20
    assert [c["created_at"] for c in conferences] == sorted(c["created_at"] for c in conferences)
    tokens = api.get(f"/api/video/conferences/{conferences[0]['id']}/conference_tokens").json()
    assert [token["name"] for token in tokens["data"]] == ["moderator", "guest"]
    sandbox.seed(conferences=5, rooms=5, seed=3)
    assert counts(sandbox) == {"conferences": 35, "rooms": 25, "conference_tokens": 70}
    created = api.post("/api/video/rooms", json={"name": "fresh"}).json()
    rooms = api.get("/api/video/rooms?page_size=100").json()["data"]
    assert rooms[-1]["id"] == created["id"]
    assert len({room["name"] for room in rooms}) == 26


def test_seed_rejects_bad_arguments(sandbox):
    with pytest.raises(ValueError):
        sandbox.seed(conferences=-1)
    with pytest.raises(ValueError):
        sandbox.seed(rooms="many")
