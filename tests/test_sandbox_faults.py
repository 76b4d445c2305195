"""The sandbox misbehaves on request (faults, latency) and logs what it received."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_B_PROJECT_ID

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")


def statuses(sandbox) -> list:
    """The statuses of the logged requests, oldest first."""
    return [entry["status"] for entry in sandbox.requests]


def test_next_k_requests_fail_then_recover(api, sandbox):
    sandbox.inject_fault(503, count=2)
    first = api.get("/api/video/rooms")
    assert first.status_code == 503
    assert first.json() == {"error": "Service Unavailable"}
    assert "Retry-After" not in first.headers
    assert api.get("/api/video/rooms").status_code == 503
    assert api.get("/api/video/rooms").status_code == 200
    assert statuses(sandbox) == [503, 503, 200]
    assert sandbox.faults == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, "Internal Server Error"), (502, "Bad Gateway"), (429, "Too Many Requests")],
)
def test_fault_statuses_have_json_bodies(api, sandbox, status, error):
    sandbox.inject_fault(status, count=1)
    response = api.get("/api/video/conferences")
    assert response.status_code == status
    assert response.json() == {"error": error}
    assert response.headers["Content-Type"].startswith("application/json")


def test_429_with_and_without_retry_after(api, sandbox):
    sandbox.inject_fault(429, count=1, retry_after=3)
    sandbox.inject_fault(429, count=1)
    sandbox.inject_fault(503, count=1, retry_after=1.5)
    limited = api.get("/api/video/rooms")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    bare = api.get("/api/video/rooms")
    assert bare.status_code == 429 and "Retry-After" not in bare.headers
    unavailable = api.get("/api/video/rooms")
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "2"


def test_fault_without_count_lasts_until_cleared(api, sandbox):
    sandbox.inject_fault(500)
    assert all(api.get("/api/video/rooms").status_code == 500 for _ in range(5))
    sandbox.clear_faults()
    assert api.get("/api/video/rooms").status_code == 200


def test_fraction_fails_about_that_share_reproducibly(api, sandbox):
    def run() -> list[int]:
        sandbox.reset()
        sandbox.inject_fault(500, fraction=0.3)
        return [api.get("/api/video/rooms").status_code for _ in range(200)]

    first = run()
    assert 30 <= first.count(500) <= 90
    assert set(first) == {200, 500}
    assert run() == first
    sandbox.reset()
    sandbox.inject_fault(500, fraction=0.0)
    assert api.get("/api/video/rooms").status_code == 200


def test_drop_closes_the_connection_without_an_answer(api, sandbox):
    sandbox.inject_fault("drop", count=1)
    with pytest.raises(requests.ConnectionError):
        api.get("/api/video/rooms")
    assert api.get("/api/video/rooms").status_code == 200
    assert statuses(sandbox) == ["drop", 200]


def test_drop_after_processing_leaves_an_ambiguous_create(api, sandbox):
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    with pytest.raises(requests.ConnectionError):
        api.post("/api/video/conferences", json={"display_name": "Ghost", "name": "ghost"})
    assert [c["name"] for c in sandbox.conferences.values()] == ["ghost"]
    assert len(sandbox.conference_tokens) == 2
    retry = api.post("/api/video/conferences", json={"display_name": "Ghost", "name": "ghost"})
    assert retry.status_code == 422
    assert retry.json()["errors"][0]["message"] == "Name has already been taken"
    entry = sandbox.requests[0]
    assert entry["status"] == "drop" and entry["body"] == {"display_name": "Ghost", "name": "ghost"}


def test_error_after_processing_applies_the_update(api, sandbox):
    room = api.post("/api/video/rooms", json={"name": "r"}).json()
    sandbox.inject_fault(500, count=1, methods=["PUT"], after_processing=True)
    response = api.put(f"/api/video/rooms/{room['id']}", json={"max_members": 9})
    assert response.status_code == 500
    assert sandbox.rooms[room["id"]]["max_members"] == 9


def test_faults_filter_on_method_and_path(api, sandbox):
    sandbox.inject_fault(503, methods=["post"], path_prefix="/api/video/rooms")
    assert api.get("/api/video/rooms").status_code == 200
    assert api.post("/api/video/rooms", json={"name": "x"}).status_code == 503
    assert api.post("/api/video/conferences", json={"display_name": "y"}).status_code == 200
    assert sandbox.rooms == {}


def test_first_matching_fault_applies(api, sandbox):
    sandbox.inject_fault(502, count=1, path_prefix="/api/video/conferences")
    sandbox.inject_fault(500, count=1)
    assert api.get("/api/video/rooms").status_code == 500
    assert api.get("/api/video/conferences").status_code == 502
    assert api.get("/api/video/conferences").status_code == 200


def test_faults_come_before_auth(sandbox, sandbox_server):
    sandbox.inject_fault(503, count=1)
    response = requests.get(f"{sandbox_server.url}/api/video/rooms", timeout=5)
    assert response.status_code == 503
    assert requests.get(f"{sandbox_server.url}/api/video/rooms", timeout=5).status_code == 401


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": 404},
        {"status": "boom"},
        {"status": 500, "count": 0},
        {"status": 500, "count": 1.5},
        {"status": 500, "fraction": 1.5},
        {"status": 429, "retry_after": -1},
    ],
)
def test_bad_fault_arguments_raise(sandbox, kwargs):
    with pytest.raises(ValueError):
        sandbox.inject_fault(**kwargs)


def test_latency_delays_every_api_request(api, sandbox):
    sandbox.set_latency(1.0)
    started = time.perf_counter()
    api.get("/api/video/rooms")
    api.post("/api/video/rooms", json={"name": "slow"})
    assert time.perf_counter() - started >= 2.0
    sandbox.set_latency(0)
    started = time.perf_counter()
    api.get("/api/video/rooms")
    # No longer delayed: the answer comes well before the latency that was set.
    assert time.perf_counter() - started < 1.0


def test_request_log_records_what_arrived(api, sandbox):
    started = time.time()
    room = api.post("/api/video/rooms", json={"name": "logged"}).json()
    api.put(f"/api/video/rooms/{room['id']}", json={"max_members": 4})
    api.get("/api/video/rooms?page_size=5")
    api.post("/api/video/rooms", data=b"{oops")
    log = sandbox.requests
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in log] == [
        ("POST", "/api/video/rooms", "", 200),
        ("PUT", f"/api/video/rooms/{room['id']}", "", 200),
        ("GET", "/api/video/rooms", "page_size=5", 200),
        ("POST", "/api/video/rooms", "", 400),
    ]
    assert [e["body"] for e in log] == [{"name": "logged"}, {"max_members": 4}, None, None]
    assert all(started <= e["time"] <= time.time() for e in log)
    assert set(log[0]) == {"method", "path", "query", "status", "time", "body"}
    assert SANDBOX_API_TOKEN not in repr(log)
    log.clear()
    assert len(sandbox.requests) == 4, "the property hands out a copy"
    puts = [e for e in sandbox.requests if e["method"] == "PUT"]
    assert len(puts) == 1
    sandbox.clear_requests()
    assert sandbox.requests == []


def test_unauthorised_requests_are_logged(sandbox, sandbox_server):
    requests.get(f"{sandbox_server.url}/api/video/rooms", auth=("x", "y"), timeout=5)
    assert statuses(sandbox) == [401]


# --- the HTTP control API -------------------------------------------------------------------


def control(server, method: str, name: str, body: dict | None = None) -> requests.Response:
    """Call the sandbox's control API (no auth)."""
    return requests.request(method, f"{server.url}/__sandbox__/{name}", json=body, timeout=10)


def test_control_api_drives_the_space(api, sandbox, sandbox_server):
    assert control(sandbox_server, "POST", "seed", {"conferences": 4, "rooms": 3, "seed": 9}).ok
    state = control(sandbox_server, "GET", "state").json()
    assert {key: state[key] for key in ("conferences", "rooms", "conference_tokens")} == {
        "conferences": 4,
        "rooms": 3,
        "conference_tokens": 8,
    }
    response = control(
        sandbox_server,
        "POST",
        "faults",
        {"status": 429, "count": 1, "retry_after": 2, "methods": ["GET"]},
    )
    assert response.status_code == 200
    limited = api.get("/api/video/rooms")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    control(sandbox_server, "POST", "faults", {"status": "drop", "path_prefix": "/api/video"})
    with pytest.raises(requests.ConnectionError):
        api.get("/api/video/rooms")
    assert control(sandbox_server, "DELETE", "faults").ok
    assert api.get("/api/video/rooms").status_code == 200
    logged = control(sandbox_server, "GET", "requests").json()["requests"]
    assert [entry["status"] for entry in logged] == [429, "drop", 200]
    assert control(sandbox_server, "DELETE", "requests").ok
    assert control(sandbox_server, "GET", "requests").json() == {"requests": []}
    assert control(sandbox_server, "POST", "latency", {"seconds": 0.15}).json() == {"seconds": 0.15}
    started = time.perf_counter()
    api.get("/api/video/rooms")
    assert time.perf_counter() - started >= 0.15
    assert set(control(sandbox_server, "POST", "reset").json().values()) == {0}
    assert sandbox.latency == 0 and sandbox.requests == []


def test_faults_and_latency_of_one_project_leave_the_other_alone(
    api, api_b, sandbox, sandbox_b, sandbox_server
):
    b = {"project": SANDBOX_B_PROJECT_ID}
    url = f"{sandbox_server.url}/__sandbox__/faults"
    assert requests.post(url, params=b, json={"status": 503}, timeout=10).json() == {"faults": 1}
    assert sandbox.faults == [] and len(sandbox_b.faults) == 1
    assert api.get("/api/video/rooms").status_code == 200
    assert api_b.get("/api/video/rooms").status_code == 503
    sandbox.inject_fault("drop")
    with pytest.raises(requests.ConnectionError):
        api.get("/api/video/rooms")
    assert api_b.get("/api/video/rooms").status_code == 503
    assert requests.delete(url, params=b, timeout=10).ok
    assert len(sandbox.faults) == 1 and api_b.get("/api/video/rooms").status_code == 200
    assert statuses(sandbox) == [200, "drop"]
    assert statuses(sandbox_b) == [503, 503, 200]

    latency = f"{sandbox_server.url}/__sandbox__/latency"
    assert requests.post(latency, params=b, json={"seconds": 0.4}, timeout=10).ok
    assert sandbox.latency == 0 and sandbox_b.latency == 0.4
    sandbox.clear_faults()
    started = time.perf_counter()
    api_b.get("/api/video/rooms")
    assert time.perf_counter() - started >= 0.4


def test_control_api_rejects_bad_input_and_is_not_logged(sandbox, sandbox_server):
    assert control(sandbox_server, "POST", "faults", {"status": 418}).status_code == 400
    assert control(sandbox_server, "POST", "faults", {"count": 1}).status_code == 400
    assert control(sandbox_server, "POST", "faults", {"status": 500, "bogus": 1}).status_code == 400
    assert control(sandbox_server, "POST", "latency", {"seconds": "x"}).status_code == 400
    assert control(sandbox_server, "POST", "seed", {"conferences": "x"}).status_code == 400
    response = requests.post(f"{sandbox_server.url}/__sandbox__/seed", data=b"[1]", timeout=5)
    assert response.status_code == 400
    assert control(sandbox_server, "GET", "nothing").status_code == 404
    sandbox.inject_fault(500)
    assert control(sandbox_server, "GET", "state").status_code == 200
    assert sandbox.requests == []


def test_a_request_the_client_gave_up_on_is_answered_before_the_space_is_emptied(
    api, sandbox, sandbox_server
):
    sandbox.set_latency(2.0)
    # The client stops waiting; the sandbox still holds the request for its latency.
    with pytest.raises(requests.Timeout):
        api.post("/api/video/rooms", json={"name": "late"}, timeout=0.3)
    assert sandbox.requests == []  # not answered yet

    assert sandbox_server.wait_until_answered(timeout=30)

    # Answered and logged now, so emptying the Space before the next test leaves nothing
    # of it to arrive later.
    assert [r["body"]["name"] for r in sandbox.requests] == ["late"]
    sandbox.set_latency(0)
