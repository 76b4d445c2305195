"""Hostile or broken requests get SignalWire-like answers from the sandbox, never a 5xx.

Plain examples of what the spec-driven fuzzing (tests/test_sandbox_fuzz.py) found or was
shown to find; each one failed before the sandbox was fixed.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from sandbox import SandboxServer
from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_PROJECT_ID

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")

AUTH = "Basic " + base64.b64encode(f"{SANDBOX_PROJECT_ID}:{SANDBOX_API_TOKEN}".encode()).decode()
OTHER_ID = "2f0e4b6e-3c8e-4b7e-9a0f-1d2c3b4a5f6e"


class Raw:
    """One HTTP/1.1 connection to the sandbox, sending exactly the bytes a test asks for."""

    def __init__(self, server: Any) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

    def send(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send one request; return the response and its body bytes."""
        self.connection.putrequest(method, target, skip_accept_encoding=True)
        all_headers = {"Authorization": AUTH} if auth else {}
        all_headers.update(headers or {})
        if body is not None and "Content-Length" not in all_headers:
            all_headers["Content-Length"] = str(len(body))
        for name, value in all_headers.items():
            self.connection.putheader(name, value)
        self.connection.endheaders(body)
        response = self.connection.getresponse()
        return response, response.read()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


@pytest.fixture
def raw(sandbox, sandbox_server):
    """A raw HTTP connection to an empty sandbox."""
    connection = Raw(sandbox_server)
    yield connection
    connection.close()


def answer(raw: Raw, method: str, target: str, body: bytes | None = None, **kwargs: Any) -> Any:
    """Send a request and return (status, JSON body), checking the body is JSON."""
    response, data = raw.send(method, target, body, **kwargs)
    assert response.getheader("Content-Type", "").startswith("application/json"), data
    return response.status, json.loads(data)


# --- date-times the issue reported ------------------------------------------------------


def test_a_join_time_before_year_1000_renders_with_four_digit_year(api):
    created = api.post(
        "/api/video/conferences",
        json={"display_name": "Old", "join_from": "0709-02-15T22:48:39Z"},
    )
    assert created.status_code == 200
    assert created.json()["join_from"] == "0709-02-15T22:48:39Z"
    fetched = api.get(f"/api/video/conferences/{created.json()['id']}").json()
    assert fetched["join_from"] == "0709-02-15T22:48:39Z"
    room = api.post("/api/video/rooms", json={"name": "old", "remove_at": "0001-01-01"}).json()
    assert room["remove_at"] == "0001-01-01T00:00:00Z"


def test_a_room_token_with_an_early_remove_at_and_odd_offset_is_minted(api, sandbox):
    response = api.post(
        "/api/video/room_tokens",
        json={"room_name": "lobby", "remove_at": "0926-03-05T20:00:36.0-16:23"},
    )
    assert response.status_code == 200, response.text
    claims = sandbox.verify_room_token(response.json()["token"])
    assert claims["remove_at"] == "0926-03-06T12:23:36Z"
    expected = datetime(926, 3, 6, 12, 23, 36, tzinfo=UTC).timestamp()
    assert claims["rat"] == int(expected)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:00:00-05:00",  # past year 9999 once in UTC
        "0001-01-01T00:30:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:59:60Z",  # a leap second into year 10000
        "0000-01-01T00:00:00Z",
        "2022-02-30",
        "２０２２-01-01T00:00:00Z",  # fullwidth digits
        "2022-01-01T00:00:00Z\n",  # a trailing newline
    ],
)
def test_unrepresentable_or_odd_date_times_are_422(api, value):
    for path, body in [
        ("/api/video/rooms", {"name": "odd", "join_from": value}),
        ("/api/video/room_tokens", {"room_name": "odd", "remove_at": value}),
    ]:
        response = api.post(path, json=body)
        assert response.status_code == 422, (path, value, response.text)
        attributes = {error["attribute"] for error in response.json()["errors"]}
        assert attributes == {next(key for key in body if key not in ("name", "room_name"))}


def test_names_and_colours_must_match_whole(api):
    response = api.post(
        "/api/video/conferences",
        json={"display_name": "A", "name": "trailing\n", "dark_primary": "#010203\n"},
    )
    assert response.status_code == 422
    assert {error["attribute"] for error in response.json()["errors"]} == {"name", "dark_primary"}


# --- methods and paths ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "PATCH", "OPTIONS", "CONNECT", "PROPFIND", "get"])
def test_an_unlisted_method_gets_a_json_405_with_allow(raw, method):
    for target, allow in [
        ("/api/video/rooms", "GET, POST"),
        (f"/api/video/rooms/{OTHER_ID}", "GET, PUT, DELETE"),
        (f"/api/video/conference_tokens/{OTHER_ID}/reset", "POST"),
        ("/__sandbox__/faults", "POST, DELETE"),
    ]:
        response, data = raw.send(method, target)
        assert response.status == 405, (method, target, data)
        assert response.getheader("Allow") == allow
        assert json.loads(data) == {"error": "Method Not Allowed"}


def test_an_unlisted_method_is_405_even_without_credentials(raw):
    assert answer(raw, "TRACE", "/api/video/conferences", auth=False) == (
        405,
        {"error": "Method Not Allowed"},
    )


def test_head_gets_a_405_without_a_body_and_the_connection_stays_usable(raw):
    response, data = raw.send("HEAD", "/api/video/rooms")
    assert response.status == 405 and data == b""
    assert response.getheader("Allow") == "GET, POST"
    status, body = answer(raw, "GET", "/api/video/rooms")
    assert status == 200 and body["data"] == []


@pytest.mark.parametrize("method", ["GET", "TRACE", "DELETE", "FOO"])
def test_an_unknown_path_gets_a_json_404(raw, method):
    for target in ("/api/video/nothing", "/", "/api/video/rooms/a/b", "*", "/__sandbox__/x"):
        assert answer(raw, method, target) == (404, {"error": "Not Found"}), target


def test_an_absolute_form_target_is_served(raw, sandbox_server):
    status, body = answer(raw, "GET", f"{sandbox_server.url}/api/video/rooms?page_size=2")
    assert status == 200 and body["data"] == []


def test_a_request_line_too_long_gets_a_json_414(raw):
    response, data = raw.send("GET", "/api/video/rooms?" + "a" * 70_000)
    assert response.status == 414
    assert json.loads(data) == {"error": "Request-URI Too Long"}


# --- bodies -----------------------------------------------------------------------------


def test_a_put_with_no_body_is_a_bad_request(api):
    room = api.post("/api/video/rooms", json={"name": "lobby"}).json()
    conference = api.post("/api/video/conferences", json={"display_name": "C"}).json()
    for path in (f"/api/video/rooms/{room['id']}", f"/api/video/conferences/{conference['id']}"):
        response = api.put(path)
        assert response.status_code == 400
        assert response.json() == {"error": "Bad Request"}
    assert api.put(f"/api/video/rooms/{room['id']}", json={}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "x", "max_members": NaN}',
        b'{"name": "x", "meta": {"a": Infinity}}',
        b'{"name": "x", "meta": {"a": -Infinity}}',
        b'{"name": "x", "meta": {"a": 1e400}}',
        b'{"name": "x", "meta": {"a": ' + b"9" * 5000 + b"}}",
        b'{"name": "x", "meta": ' + b'{"a": ' * 150 + b"1" + b"}" * 150 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{}",
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "overflow",
        "5000-digits",
        "deep",
        "deeper",
        "bom",
        "utf16",
    ],
)
def test_bodies_that_are_not_strict_json_are_400(raw, body):
    assert answer(raw, "POST", "/api/video/rooms", body) == (400, {"error": "Bad Request"})


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_body_that_is_not_declared_json_is_400(raw, content_type):
    body = json.dumps({"name": "typed"}).encode()
    headers = {"Content-Type": content_type}
    assert answer(raw, "POST", "/api/video/rooms", body, headers=headers) == (
        400,
        {"error": "Bad Request"},
    )


def test_json_media_types_are_accepted(raw):
    for index, content_type in enumerate(
        ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"]
    ):
        body = json.dumps({"name": f"typed{index}"}).encode()
        status, created = answer(
            raw, "POST", "/api/video/rooms", body, headers={"Content-Type": content_type}
        )
        assert status == 200 and created["name"] == f"typed{index}"


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "99999999999999999999999"])
def test_a_bad_content_length_is_400_and_closes(raw, length):
    response, data = raw.send("POST", "/api/video/rooms", b"", headers={"Content-Length": length})
    assert response.status == 400
    assert json.loads(data) == {"error": "Bad Request"}
    assert response.getheader("Connection") == "close"


def test_a_body_over_the_limit_is_refused_without_reading_it(sandbox_server, sandbox):
    with socket.create_connection(("127.0.0.1", sandbox_server.port), timeout=10) as client:
        client.sendall(
            b"POST /api/video/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + AUTH.encode()
            + b"\r\nContent-Length: 50000000\r\n\r\n{"
        )
        reply = client.recv(65536)
    head, _, data = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(data) == {"error": "Bad Request"}


def test_a_broken_chunked_body_is_400(sandbox_server, sandbox):
    for framing in (b"zz\r\n{}\r\n0\r\n\r\n", b"fffffffffff\r\n{}\r\n0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", sandbox_server.port), timeout=10) as client:
            client.sendall(
                b"POST /api/video/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: "
                + AUTH.encode()
                + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                + framing
            )
            reply = client.recv(65536)
        assert reply.startswith(b"HTTP/1.1 400"), reply


# --- query parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "attribute"),
    [
        ("page_size=abc", "page_size"),
        ("page_size=%EF%BC%95", "page_size"),  # a fullwidth 5
        ("page_size=1_0", "page_size"),
        ("page_size=%205", "page_size"),
        ("page_size=5.0", "page_size"),
        ("page_size=", "page_size"),
        ("page_size=" + "9" * 5000, "page_size"),
        ("page_number=99999999999", "page_number"),
        ("page_number=-1", "page_number"),
        ("page_number=x", "page_number"),
        ("include_active_session=maybe", "include_active_session"),
        ("include_active_session=1", "include_active_session"),
        ("include_active_session=", "include_active_session"),
        ("starts_after=%D9%A3", "starts_after"),  # an Arabic-Indic digit, not a Unix time
    ],
)
def test_query_parameters_of_the_wrong_type_are_422(api, query, attribute):
    for path in ("/api/video/rooms", "/api/video/conferences"):
        response = api.get(f"{path}?{query}")
        assert response.status_code == 422, (path, query, response.text)
        assert [error["attribute"] for error in response.json()["errors"]] == [attribute]


def test_include_active_session_is_checked_on_single_objects_too(api):
    room = api.post("/api/video/rooms", json={"name": "lobby"}).json()
    conference = api.post("/api/video/conferences", json={"display_name": "C"}).json()
    for path in (
        f"/api/video/rooms/{room['id']}",
        "/api/video/rooms/lobby",
        f"/api/video/conferences/{conference['id']}",
    ):
        assert api.get(f"{path}?include_active_session=true").status_code == 200
        assert api.get(f"{path}?include_active_session=false").status_code == 200
        response = api.get(f"{path}?include_active_session=yes")
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert [error["attribute"] for error in errors] == ["include_active_session"], path


def test_unknown_query_parameters_are_ignored(api):
    api.post("/api/video/rooms", json={"name": "lobby"})
    response = api.get("/api/video/rooms?surprise=%00%FF&page_size=1&page_size=2")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


def test_a_transfer_coding_other_than_chunked_is_400_and_closes(raw):
    headers = {"Transfer-Encoding": "gzip"}
    response, data = raw.send("POST", "/api/video/rooms", b"", headers=headers)
    assert response.status == 400
    assert json.loads(data) == {"error": "Bad Request"}
    assert response.getheader("Connection") == "close"


def test_links_without_a_host_header_name_the_servers_own_address():
    with SandboxServer(
        host="::1", project_id=SANDBOX_PROJECT_ID, api_token=SANDBOX_API_TOKEN
    ) as server:
        connection = http.client.HTTPConnection("::1", server.port, timeout=10)
        connection.putrequest("GET", "/api/video/rooms", skip_host=True)
        connection.putheader("Authorization", AUTH)
        connection.endheaders()
        links = json.loads(connection.getresponse().read())["links"]
        connection.close()
    assert links["first"].startswith(f"http://[::1]:{server.port}/api/video/rooms?")


# --- the control API --------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [1e308, 601, -1])
def test_an_unusable_latency_is_refused(sandbox_server, sandbox, seconds):
    reply = requests.post(
        f"{sandbox_server.url}/__sandbox__/latency", json={"seconds": seconds}, timeout=10
    )
    assert reply.status_code == 400
    assert sandbox.latency == 0


def test_a_seed_too_large_is_refused(sandbox_server, sandbox):
    reply = requests.post(
        f"{sandbox_server.url}/__sandbox__/seed", json={"conferences": 10**12}, timeout=10
    )
    assert reply.status_code == 400
    assert sandbox.state()["conferences"] == 0


def test_a_value_that_is_not_json_is_answered_500_and_logged_as_sent(api, sandbox):
    room = api.post("/api/video/rooms", json={"name": "lobby"}).json()
    sandbox.update_room(room["id"], {"meta": {"x": float("nan")}}, validate=False)
    response = api.get(f"/api/video/rooms/{room['id']}")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error"}
    assert sandbox.requests[-1]["status"] == 500
