"""Spec-driven fuzzing: whatever it is sent, the sandbox answers like SignalWire.

Requests for every operation the sandbox serves are generated from SignalWire's OpenAPI
description by schemathesis, valid (positive) and invalid (negative), and sent over real
HTTP. A second, hand-written strategy sends what a spec does not describe: unlisted
methods, unknown paths, broken JSON, odd media types, odd dates and huge values.

Every answer must be a non-5xx JSON answer that validates against the spec; the sandbox
must refuse (400/422) what the request schemas refuse and accept what they accept, save
for the few rules the spec states only in prose (unique names, join window order...).

The budget is SANDBOX_FUZZ_EXAMPLES examples per operation and mode (25 by default, so the
suite stays fast; raise it locally for a longer hunt, e.g. 1000). Under the "ci" hypothesis
profile (CI set, or HYPOTHESIS_PROFILE=ci) generation is derandomized, so CI never flakes.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from sandbox.control import CONTROL_ROUTES
from sandbox.handler import API_ROUTES
from tests.conftest import (
    SANDBOX_API_TOKEN,
    SANDBOX_B_API_TOKEN,
    SANDBOX_B_PROJECT_ID,
    SANDBOX_PROJECT_ID,
)
from tests.spec_validation import find_operation, is_operation, load_spec, spec_available, spec_path
from tests.spec_validation import validate_response as validate_against_spec

pytestmark = pytest.mark.needs_spec

FUZZ_EXAMPLES = int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "25"))
# On top of the profile tests/conftest.py loaded ("ci": derandomized, no example database;
# "dev": random): only the budget and the health checks differ.
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def basic_auth(project_id: str, api_token: str) -> str:
    """The Authorization header of a project's credentials."""
    return "Basic " + base64.b64encode(f"{project_id}:{api_token}".encode()).decode()


AUTH = basic_auth(SANDBOX_PROJECT_ID, SANDBOX_API_TOKEN)
# Each project the sandbox serves is fuzzed with its own credentials: (fixture, header).
PROJECTS = {
    "project-a": ("sandbox", AUTH),
    "project-b": ("sandbox_b", basic_auth(SANDBOX_B_PROJECT_ID, SANDBOX_B_API_TOKEN)),
}
# Rules the spec states in prose only: a schema-valid request may still be refused for them.
SEMANTIC_ERRORS = (
    re.compile(r".* has already been taken"),
    re.compile(r"Join until must be after join from"),
    re.compile(r".* must be present"),
    re.compile(r"(Meta|Room meta) is too long \(maximum is \d+ characters\)"),
    re.compile(r"Page token is invalid"),
    re.compile(r"(Starts after|Ends before) must be a valid RFC 3339 datetime"),
    re.compile(r"Created (after|before|on) must be a valid date or ISO 8601 datetime"),
    re.compile(r"Url must be a valid RTMP or RTMPS URL"),
    re.compile(r"Conference does not exist"),
)
_METHODS = ("GET", "POST", "PUT", "DELETE")


# --- what the sandbox serves, in the spec's terms -------------------------------------


def _shape(template: str) -> str:
    return re.sub(r"\{[^/]+\}", "{}", template)


@functools.cache
def served_operations() -> list[tuple[str, str]]:
    """(path template, method) of every spec operation the sandbox serves."""
    routes = {_shape(template): methods for template, methods in API_ROUTES.items()}
    found = []
    for template, operations in load_spec()["paths"].items():
        for method in operations:
            if method.upper() in routes.get(_shape(template), {}):
                found.append((template, method.upper()))
    return sorted(found)


@functools.cache
def openapi() -> Any:
    """The spec loaded by schemathesis."""
    return schemathesis.openapi.from_path(str(spec_path()))


# --- the request oracle: what the spec says of a request ------------------------------


def _resolve(node: Any) -> Any:
    """Inline every $ref of a schema taken from the spec's components."""
    if isinstance(node, list):
        return [_resolve(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = load_spec()["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return {"allOf": [_resolve(target), _resolve(rest)]} if rest else _resolve(target)
    return {key: _resolve(value) for key, value in node.items()}


_REQUEST_FORMATS = jsonschema.FormatChecker()
_REQUEST_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?",
    re.ASCII,
)


@_REQUEST_FORMATS.checks("date-time", raises=(ValueError, OverflowError))
def _request_datetime(value: object) -> bool:
    """RFC 3339, or a date alone (the spec's prose allows both), that exists in UTC."""
    if not isinstance(value, str):
        return True
    match = _REQUEST_DATETIME.fullmatch(value)
    if not match:
        return False
    if match.group(4) is None:
        datetime(*(int(part) for part in match.groups()[:3]), tzinfo=UTC)
        return True
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    offset = match.group(8).upper().replace("Z", "+00:00")
    if int(offset[1:3]) > 23 or int(offset[4:6]) > 59:
        return False
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{min(second, 59):02d}"
    moment = datetime.fromisoformat(text + offset)
    if second == 60:  # a leap second: the second after 59 must exist too
        moment += timedelta(seconds=1)
    moment.astimezone(UTC)
    return True


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)


@_REQUEST_FORMATS.checks("uuid")
def _request_uuid(value: object) -> bool:
    """RFC 4122's string form only (no braces, no urn: prefix, no stray hyphens)."""
    return not isinstance(value, str) or bool(_CANONICAL_UUID.fullmatch(value))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    # JSON Schema patterns are ECMA-262: "$" ends the input, a trailing newline included.
    if isinstance(instance, str) and not re.search(pattern.replace("$", r"\Z"), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_RequestValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)


@functools.cache
def _body_schema(template: str, method: str) -> dict[str, Any] | None:
    body = load_spec()["paths"][template][method.lower()].get("requestBody")
    if not body:
        return None
    return _resolve(body["content"]["application/json"]["schema"])


@functools.cache
def _query_schemas(template: str, method: str) -> dict[str, dict[str, Any]]:
    parameters = load_spec()["paths"][template][method.lower()].get("parameters", [])
    found = {}
    for parameter in parameters:
        if "$ref" in parameter:
            parameter = load_spec()["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        if parameter["in"] == "query":
            found[parameter["name"]] = _resolve(parameter["schema"])
    return found


def _valid(schema: dict[str, Any], value: Any) -> bool:
    return _RequestValidator(schema, format_checker=_REQUEST_FORMATS).is_valid(value)


@functools.cache
def _path_schemas(template: str, method: str) -> dict[str, dict[str, Any]]:
    parameters = load_spec()["paths"][template][method.lower()].get("parameters", [])
    found = {}
    for parameter in parameters:
        if "$ref" in parameter:
            parameter = load_spec()["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        if parameter["in"] == "path":
            found[parameter["name"]] = _resolve(parameter["schema"])
    return found


def _path_values(template: str, path: str) -> dict[str, str]:
    names = re.findall(r"\{([^}]+)\}", template)
    pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "/?$"
    match = re.match(pattern, path)
    if match is None:
        return {}
    return dict(zip(names, (unquote(value) for value in match.groups()), strict=True))


def invalid_inputs(
    template: str, method: str, query: str, body: Any, path: str = ""
) -> set[str] | None:
    """Names of the inputs the spec refuses ("<body>" for the body as a whole).

    None when the body is not JSON at all (a 400, or a 422 where no 400 is listed).
    """
    wrong: set[str] = set()
    values = _path_values(template, path)
    for name, schema in _path_schemas(template, method).items():
        if name in values and not _valid(schema, values[name]):
            wrong.add(name)
    for name, schema in _query_schemas(template, method).items():
        values = [value for key, value in parse_qsl(query, keep_blank_values=True) if key == name]
        if values and not _valid_query_value(schema, values[-1]):
            wrong.add(name)
    schema = _body_schema(template, method)
    if schema is None:
        return None if body is _NOT_JSON else wrong
    if body is _ABSENT:
        return {*wrong, "<body>"}
    if body is _NOT_JSON:
        return None
    if not isinstance(body, dict):
        return {*wrong, "<body>"}
    properties = schema.get("properties", {})
    for key, value in body.items():
        if key not in properties or not _valid(properties[key], value):
            wrong.add(key)
    wrong.update(name for name in schema.get("required", ()) if name not in body)
    return wrong


def _valid_query_value(schema: dict[str, Any], raw: str) -> bool:
    kind = schema.get("type")
    if kind == "integer":
        if not re.fullmatch(r"[+-]?[0-9]{1,12}", raw):
            return False
        if schema.get("format") == "int32" and not -(2**31) <= int(raw) < 2**31:
            return False
        return _valid(schema, int(raw))
    if kind == "boolean":
        return raw in ("true", "false")
    return _valid(schema, raw)


_ABSENT = object()
_NOT_JSON = object()


def _reject(token: str) -> Any:
    raise ValueError(token)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def read_sent_body(data: bytes | None) -> Any:
    """The JSON value of a sent body, _ABSENT when empty, _NOT_JSON unless strict JSON.

    Strict: UTF-8, no NaN or infinities, at most 100 levels deep (Ruby's default).
    """
    if data is None or not data.strip(b" \t\r\n"):
        return _ABSENT
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject, parse_float=_finite)
        too_deep = _depth(value) > 100
    except (ValueError, RecursionError):
        return _NOT_JSON
    return _NOT_JSON if too_deep else value


# --- the answer check -------------------------------------------------------------------


def check_answer(
    method: str,
    target: str,
    status: int,
    headers: dict[str, str],
    data: bytes,
    sent_body: bytes | None,
    *,
    authorised: bool,
    media_type: str | None = None,
) -> None:
    """Assert one answer is what SignalWire would send for this request."""
    path, _, query = target.partition("?")
    if not path.startswith("/"):
        parts = urlsplit(target)
        path, query = parts.path, parts.query
    where = f"{method} {target[:200]} ({media_type}: {(sent_body or b'')[:80]!r}) -> {status}"
    assert status < 500, f"{where}: {data[:300]!r}"
    body: Any = None
    if method != "HEAD" and status != 204:
        assert headers.get("content-type", "").startswith("application/json"), where
        body = json.loads(data, parse_constant=_reject)
    else:
        assert data == b"", f"{where} has a body"
    route_methods = _route_methods(path)
    if route_methods is None:
        assert status == 404 and (body is None or body == {"error": "Not Found"}), where
        return
    if method not in route_methods:
        assert status == 405, where
        assert headers.get("allow") == ", ".join(m for m in _METHODS if m in route_methods)
        assert body is None or body == {"error": "Method Not Allowed"}, where
        return
    if path.startswith("/__sandbox__"):
        return
    assert is_operation(method, path), where
    validate_against_spec(method, path, status, body)
    if not authorised:
        assert status == 401, where
        return
    assert status != 401, where
    template, operation = find_operation(method, path)
    parsed = read_sent_body(sent_body)
    declared = (media_type or "application/json").split(";")[0].strip().lower()
    if parsed is not _ABSENT and not (declared == "application/json" or declared.endswith("+json")):
        parsed = _NOT_JSON  # a body, on any operation, is JSON or refused
    wrong = invalid_inputs(template, method, query, parsed, path)
    if status == 404:
        return  # an unknown id is answered before the body is looked at
    # A refused body gets the 400 the operation lists, or its 422 when it lists none.
    refused = 400 if "400" in operation["responses"] else 422
    if wrong is None:
        assert status == refused, f"{where}: a body that is not JSON must be a {refused}"
        return
    if "<body>" in wrong:
        assert status == refused, f"{where}: a missing or non-object body must be a {refused}"
        return
    if wrong:
        assert status in (400, 422), f"{where}: accepted {sorted(wrong)}: {data[:300]!r}"
    else:
        assert status != 400, f"{where}: a valid request was refused: {data[:300]!r}"
    if status == 422:
        for error in body["errors"]:
            blamed = error["attribute"]
            semantic = any(rule.fullmatch(error["message"]) for rule in SEMANTIC_ERRORS)
            assert blamed in wrong or semantic, f"{where}: blames valid {blamed}: {error}"


def _route_methods(path: str) -> frozenset[str] | None:
    normalised = path.rstrip("/") if len(path) > 1 else path
    if normalised in CONTROL_ROUTES:
        return CONTROL_ROUTES[normalised]
    for template, methods in API_ROUTES.items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, normalised):
            return frozenset(methods)
    return None


# --- known objects for path parameters --------------------------------------------------


def _existing(space: Any, template: str, pick: int) -> str | None:
    """An id (or name) of an object that exists, for the path parameter of a template."""
    if space.state()["conferences"] < 3 or space.state()["rooms"] < 3:
        space.seed(conferences=3, rooms=3, seed=pick)
    if space.state()["room_sessions"] < 10:
        space.seed(sessions=10, seed=pick)
    if not space.streams:
        for room_id in sorted(space.rooms):
            space.create_stream("room", room_id, {"url": f"rtmp://cdn.example/{pick}"})
    if not space.room_recordings:
        session = next(iter(space.room_sessions.values()))
        started = space.start_session(room_name=session["name"] + "_rec", record=True)
        space.end_session(started["id"])
    if template.startswith("/api/video/conference_tokens/"):
        pool = sorted(space.conference_tokens)
    elif template.startswith("/api/video/streams/"):
        pool = sorted(space.streams)
    elif template.startswith("/api/video/room_sessions/"):
        pool = sorted(space.room_sessions)
    elif template.startswith("/api/video/room_recordings/"):
        pool = sorted(space.room_recordings)
    elif template.startswith("/api/video/logs/"):
        pool = sorted(space.logs)
    elif template.startswith("/api/video/conferences/"):
        pool = sorted(space.conferences)
    elif template == "/api/video/rooms/{name}":
        pool = sorted(room["name"] for room in space.rooms.values())
    elif template.startswith("/api/video/rooms/"):
        pool = sorted(space.rooms)
    else:
        return None
    return pool[pick % len(pool)] if pool else None


# --- the spec-driven fuzz test ----------------------------------------------------------


def test_the_sandbox_serves_the_specs_operations_on_its_routes():
    spec_paths = {_shape(template) for template in load_spec()["paths"]}
    for template, methods in API_ROUTES.items():
        assert _shape(template) in spec_paths, template
        spec_methods = set()
        for spec_template, operations in load_spec()["paths"].items():
            if _shape(spec_template) == _shape(template):
                spec_methods |= {method.upper() for method in operations}
        assert set(methods) == spec_methods, template
    served = {(_shape(template), method) for template, method in served_operations()}
    every = {
        (_shape(template), method.upper())
        for template, operations in load_spec()["paths"].items()
        for method in operations
    }
    assert served == every


def spec_operations() -> list[tuple[str, str]]:
    """(path template, method) of every operation of the spec, served or not."""
    return sorted(
        (template, method.upper())
        for template, operations in load_spec()["paths"].items()
        for method in operations
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Fuzz every operation of the spec (read at collection, only when it is there)."""
    if {"template", "method"} <= set(metafunc.fixturenames):
        # Without the spec the module is skipped (needs_spec); one placeholder carries it.
        operations = spec_operations() if spec_available() else [("no-spec", "GET")]
        metafunc.parametrize(("template", "method"), operations)


def test_every_operation_of_the_spec_is_fuzzed_both_ways():
    # Collected as pytest collects it, whatever this run selected.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            f"{__file__}::test_generated_requests_get_answers_per_the_spec",
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fuzzed = {
        line.partition("[")[2].removesuffix("]")
        for line in result.stdout.splitlines()
        if "::test_generated_requests_get_answers_per_the_spec[" in line
    }
    expected = {
        f"{template}-{method.upper()}-{project}-{mode}"
        for template, operations in load_spec()["paths"].items()
        for method in operations
        for mode in ("positive", "negative")
        for project in PROJECTS
    }
    assert len(expected) == 132  # the 33 operations of the description, both ways, twice
    assert sorted(expected - fuzzed) == [] and sorted(fuzzed - expected) == []


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("project", list(PROJECTS))
def test_generated_requests_get_answers_per_the_spec(
    request, sandbox_server, template, method, mode, project
):
    request.getfixturevalue("sandbox")  # the first project, empty: it answers bad credentials
    # The project's credentials under the name run() reads: its source, from which the
    # "ci" profile derives its examples, stays as it was for one project.
    fixture, AUTH = PROJECTS[project]
    sandbox = request.getfixturevalue(fixture)
    operation = openapi()[template][method]
    session = requests.Session()

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode), pick=st.none() | st.integers(0, 99))
    def run(case: Any, pick: int | None) -> None:
        if pick is not None and case.path_parameters:
            existing = _existing(sandbox, template, pick)
            if existing is not None:
                name = next(iter(case.path_parameters))
                case.path_parameters[name] = existing
            if isinstance(case.body, dict) and "url" in case.body and pick % 2:
                # Only rtmp:// and rtmps:// stream urls work: a rule the spec states in prose.
                case.body["url"] = f"rtmps://live.example.com/app/key-{pick}"
        kwargs = case.as_transport_kwargs(base_url=sandbox_server.url)
        kwargs["headers"] = dict(kwargs.get("headers") or {})
        header_part = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
        if header_part is None or header_part.mode != GenerationMode.NEGATIVE:
            # Valid headers use the Space's own credentials; invalid ones are kept as drawn.
            kwargs["headers"]["Authorization"] = AUTH
        response = session.request(**kwargs, timeout=10)
        sent = response.request.body
        sent = sent.encode() if isinstance(sent, str) else sent
        check_answer(
            method,
            response.request.path_url,
            response.status_code,
            {key.lower(): value for key, value in response.headers.items()},
            response.content,
            sent,
            authorised=kwargs["headers"].get("Authorization") == AUTH,
            media_type=response.request.headers.get("Content-Type"),
        )

    try:
        run()
    finally:
        session.close()
    # Drawn credentials that name no project are answered and logged by the first one.
    logged = sandbox.requests + (sandbox_server.space.requests if project != "project-a" else [])
    answered = [
        entry["status"]
        for entry in logged
        if entry["method"] == method
        and is_operation(method, entry["path"])
        and find_operation(method, entry["path"])[0] == template
    ]
    if mode == GenerationMode.POSITIVE:  # valid requests must mostly get through
        assert any(200 <= status < 300 for status in answered), sorted(set(answered))
    else:  # and invalid ones must be refused
        assert any(400 <= status < 500 for status in answered), sorted(set(answered))


# --- what the spec does not describe ----------------------------------------------------

ODD_DATES = (
    "0709-02-15T22:48:39Z",
    "0926-03-05T20:00:36.0-16:23",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-00:01",
    "9999-12-31T23:59:60Z",
    "2016-12-31T23:59:60Z",
    "2022-01-01t10:00:00z",
    "2022-01-01 10:00:00+05:30",
    "2022-01-01T10:00:00.1234567890123Z",
    "2022-01-01T10:00:00+24:00",
    "2022-13-01",
    "2022-02-29",
    "2024-02-29",
    "0000-01-01",
    "２０２２-01-01",
    "2022-01-01\n",
    "",
    "now",
)
ODD_VALUES = st.one_of(
    st.sampled_from(ODD_DATES),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["x" * 4000, "a\n", "#010203\n", "room.self.deaf", "\x00", "\ud800"]),
    st.lists(st.sampled_from(["room.self.deaf", "room.lock", "nope", 1]), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)
FIELDS = (
    "name",
    "room_name",
    "display_name",
    "description",
    "user_name",
    "join_from",
    "join_until",
    "remove_at",
    "remove_after_seconds_elapsed",
    "max_members",
    "quality",
    "layout",
    "size",
    "meta",
    "room_meta",
    "permissions",
    "join_as",
    "media_allowed",
    "auto_create_room",
    "dark_primary",
    "enable_chat",
    "surprise",
)
RAW_BODIES = st.sampled_from(
    [
        b"",
        b"   ",
        b"{",
        b"null",
        b"[]",
        b'"text"',
        b"42",
        b"NaN",
        b'{"name": NaN}',
        b'{"meta": {"a": Infinity}}',
        b'{"meta": {"a": 1e999}}',
        b'{"meta": {"a": ' + b"7" * 4400 + b"}}",
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 120 + b"0" + b"}" * 120,
        b"\xff\xfe\x00{",
        b"\xef\xbb\xbf{}",
        b'{"name": "dup", "name": "dup2"}',
        b'{"name": "\\ud800"}',
    ]
)
MEDIA_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/problem+json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "garbage",
    ]
)
OFF_SPEC_TEMPLATES = [
    "/api/video/nothing",
    "/api/video/rooms/{id}/nothing",
    "/api/video",
    "/",
    "/__sandbox__/state",
    "/__sandbox__/nothing",
]


@functools.cache
def raw_templates() -> list[str]:
    """The templates raw requests are sent to: the served ones and some off the spec."""
    return sorted({template for template, _ in served_operations()}) + OFF_SPEC_TEMPLATES


QUERY_VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "50", "1000", "1001", "-1", "+5", " 5", "５", "1_0", "1e3"]),
    st.sampled_from(["2147483648", "9" * 30, "true", "false", "True", "null", "%00", "%FF"]),
    st.text(max_size=10),
)
QUERY_NAMES = st.sampled_from(
    [
        "page_size",
        "page_number",
        "page_token",
        "include_active_session",
        "starts_after",
        "room_id",
        "status",
        "media_ttl",
        "created_on",
        "include_deleted",
        "x",
    ]
)


@st.composite
def raw_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request the spec does not describe, or one far off what it describes."""
    template = draw(st.sampled_from(raw_templates()))
    path = template
    for placeholder in re.findall(r"\{[^}]+\}", template):
        segment = draw(
            st.one_of(
                st.integers(0, 99).map(lambda pick: f"\x02{pick}\x02"),  # an existing object
                st.uuids().map(str),
                st.text(min_size=1, max_size=30).map(lambda text: quote(text, safe="")),
                st.sampled_from(["..", "%2F", "%00", "a%20b", "%FF", "~"]),
            )
        )
        path = path.replace(placeholder, segment, 1)
    if draw(st.booleans()):
        path += "/"
    pairs = draw(st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4))
    query = "&".join(f"{quote(name)}={quote(value, safe='%')}" for name, value in pairs)
    method = draw(
        st.sampled_from(
            ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "FOO"]
        )
    )
    if draw(st.booleans()):
        fields = draw(st.dictionaries(st.sampled_from(FIELDS), ODD_VALUES, max_size=6))
        body = json.dumps(fields).encode()
    else:
        body = draw(RAW_BODIES)
    return {
        "template": template,
        "path": path,
        "query": query,
        "method": method,
        "body": body,
        "media_type": draw(MEDIA_TYPES),
        "authorised": draw(st.sampled_from([True, True, True, False])),
        "chunked": draw(st.booleans()),
    }


def _fill_existing(space: Any, request: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = _existing(space, request["template"], int(match.group(1)))
        return quote(value or "missing", safe="")

    return re.sub("\x02([0-9]+)\x02", replace, request["path"])


def _send_raw(
    port: int, request: dict[str, Any], path: str, auth: str = AUTH
) -> tuple[Any, bytes, bool]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    target = f"{path}?{request['query']}" if request["query"] else path
    connection.putrequest(request["method"], target, skip_accept_encoding=True)
    if request["authorised"]:
        connection.putheader("Authorization", auth)
    if request["media_type"] is not None:
        connection.putheader("Content-Type", request["media_type"])
    body = request["body"]
    if request["chunked"] and body:
        connection.putheader("Transfer-Encoding", "chunked")
        half = len(body) // 2
        pieces = [part for part in (body[:half], body[half:]) if part]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in pieces) + b"0\r\n\r\n"
    else:
        connection.putheader("Content-Length", str(len(body)))
        payload = body
    connection.endheaders(payload)
    response = connection.getresponse()
    data = response.read()
    keep = response.getheader("Connection", "").lower() != "close"
    if keep:  # the connection must still be in step: a second request on it is answered
        connection.request(
            "GET", "/api/video/conferences?page_size=1", headers={"Authorization": auth}
        )
        follow = connection.getresponse()
        follow.read()
        assert follow.status == 200, f"the connection fell out of step after {target}"
    connection.close()
    return response, data, keep


@pytest.mark.parametrize("project", list(PROJECTS))
def test_requests_outside_the_spec_get_json_answers(request, sandbox_server, project):
    fixture, auth = PROJECTS[project]
    sandbox = request.getfixturevalue(fixture)

    @settings(FUZZ, max_examples=FUZZ_EXAMPLES * 8)
    @given(request=raw_requests())
    def run(request: dict[str, Any]) -> None:
        path = _fill_existing(sandbox, request)
        response, data, _ = _send_raw(sandbox_server.port, request, path, auth)
        target = f"{path}?{request['query']}" if request["query"] else path
        check_answer(
            request["method"],
            target,
            response.status,
            {key.lower(): value for key, value in response.getheaders()},
            data,
            request["body"],
            authorised=request["authorised"],
            media_type=request["media_type"],
        )

    run()
