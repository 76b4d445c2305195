"""Validate responses against SignalWire's OpenAPI description of /api/video."""

from __future__ import annotations

import functools
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# The one setting that finds SignalWire's published description, and the flag that makes
# its absence an error (CI) rather than a reason to skip the tests that need it.
SPEC_ENV = "SIGNALWIRE_OPENAPI_SPEC"
SPEC_REQUIRED_ENV = "SIGNALWIRE_OPENAPI_SPEC_REQUIRED"
SPEC_NOT_SET = (
    f"needs SignalWire's OpenAPI description: set {SPEC_ENV} to the path of "
    "signalwire-video-openapi.yaml (README, Tests)"
)
# Statuses the spec does not describe but SignalWire (and the sandbox's faults) do send.
UNDOCUMENTED_ERROR_STATUSES = (429, 502, 503)
_GENERIC_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": False,
}
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_METHOD_NOT_ALLOWED = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"const": "Method Not Allowed"}},
    "additionalProperties": False,
}

FORMAT_CHECKER = jsonschema.FormatChecker()


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00").replace("t", "T"))
    return True


@FORMAT_CHECKER.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return str(uuid.UUID(value)) == value.lower()


def spec_path(environ: Any = os.environ) -> Path | None:
    """The path SIGNALWIRE_OPENAPI_SPEC names, or None when it is not set."""
    value = environ.get(SPEC_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def spec_required(environ: Any = os.environ) -> bool:
    """Tell whether a missing description must fail the run instead of skipping tests."""
    return environ.get(SPEC_REQUIRED_ENV, "").strip().lower() not in ("", "0", "false", "no")


def spec_problem(environ: Any = os.environ) -> str | None:
    """Why the description cannot be used (None when it can)."""
    path = spec_path(environ)
    if path is None:
        return SPEC_NOT_SET
    if not path.is_file():
        return f"{SPEC_ENV} names no file: {path}"
    return None


def spec_available() -> bool:
    """Tell whether the OpenAPI description is configured and present."""
    return spec_problem() is None


@functools.cache
def load_spec() -> dict[str, Any]:
    """Load and cache the OpenAPI document."""
    problem = spec_problem()
    if problem is not None:
        raise RuntimeError(problem)
    path = spec_path()
    assert path is not None
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str, int]]:
    routes = []
    for template in load_spec()["paths"]:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template))
        routes.append((re.compile(f"^{pattern}$"), template, template.count("{")))
    return routes


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """Resolve a concrete request path to its (template, operation) in the spec."""
    path = path.split("?", 1)[0]
    if len(path) > 1:
        path = path.rstrip("/")
    if method != method.upper():  # HTTP methods are case-sensitive: "get" is not GET
        raise AssertionError(f"{method} {path} is not an operation of the spec")
    method = method.lower()
    paths = load_spec()["paths"]
    candidates = []
    for pattern, template, params in _templates():
        match = pattern.match(path)
        if not match or method not in paths[template]:
            continue
        # /rooms/{id} and /rooms/{name} both match; a UUID segment means {id}.
        by_name = "{name}" in template
        looks_like_uuid = bool(match.groups()) and _looks_like_uuid(match.groups()[-1])
        candidates.append((params, by_name == looks_like_uuid, template))
    if not candidates:
        raise AssertionError(f"{method.upper()} {path} is not an operation of the spec")
    candidates.sort()
    template = candidates[0][2]
    return template, paths[template][method]


def _looks_like_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@functools.cache
def _validator(ref: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": ref, "components": load_spec()["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=FORMAT_CHECKER)


def response_schema_ref(method: str, path: str, status: int) -> str | None:
    """Return the '#/components/...' ref of the documented body, None for a bodiless reply."""
    template, operation = find_operation(method, path)
    responses = operation["responses"]
    described = responses.get(str(status))
    if described is None:
        raise AssertionError(
            f"{method.upper()} {template} answered {status}, which the spec does not list "
            f"(documented: {', '.join(sorted(responses))})"
        )
    content = described.get("content")
    if not content:
        return None
    return content["application/json"]["schema"]["$ref"]


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Raise if a response status and JSON body do not match the spec's operation."""
    if not is_operation(method, path):
        # Not an operation of the spec: a JSON 404 (unknown path) or 405 (unlisted method),
        # or a fault the test asked for.
        if status == 404:
            ref = "#/components/schemas/Types.StatusCodes.StatusCode404"
            _check(_validator(ref), body, method, path, status)
        elif status == 405:
            jsonschema.validate(body, _METHOD_NOT_ALLOWED)
        elif status in (500, *UNDOCUMENTED_ERROR_STATUSES):
            jsonschema.validate(body, _GENERIC_ERROR)
        else:
            raise AssertionError(f"{method.upper()} {path} is not an operation, yet got {status}")
        return
    if status in UNDOCUMENTED_ERROR_STATUSES:
        jsonschema.validate(body, _GENERIC_ERROR)
        return
    ref = response_schema_ref(method, path, status)
    if ref is None:
        if body not in (None, b"", ""):
            raise AssertionError(f"{method.upper()} {path} -> {status} must have no body")
        return
    _check(_validator(ref), body, method, path, status)


def _check(
    validator: jsonschema.Draft202012Validator, body: Any, method: str, path: str, status: int
) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        details = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5]
        )
        ref = validator.schema["$ref"]
        raise AssertionError(f"{method.upper()} {path} -> {status} breaks {ref}: {details}")


def is_operation(method: str, path: str) -> bool:
    """Tell whether the spec describes this method on this path."""
    try:
        find_operation(method, path)
    except AssertionError:
        return False
    return True


class ResponseRecorder:
    """Collect every API response a sandbox sends, then validate them all against the spec."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, Any, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str, status: Any, body: Any) -> None:
        with self._lock:
            self.responses.append((method, path, status, body))

    def problems(self) -> list[str]:
        """Return one message per response that breaks the spec."""
        found = []
        for method, path, status, body in list(self.responses):
            if status == "drop":
                continue
            try:
                validate_response(method, path, status, body)
            except (AssertionError, jsonschema.ValidationError) as exc:
                found.append(str(exc))
        return found

    def assert_valid(self) -> None:
        """Fail with every non-conforming response listed."""
        problems = self.problems()
        assert not problems, "responses that break the spec:\n" + "\n".join(problems)


@contextmanager
def recording(space: Any) -> Iterator[ResponseRecorder]:
    """Record a sandbox Space's responses while the block runs."""
    recorder = ResponseRecorder()
    space.add_observer(recorder)
    try:
        yield recorder
    finally:
        space.remove_observer(recorder)


@contextmanager
def spec_checked(space: Any) -> Iterator[ResponseRecorder]:
    """Record responses during the block and require all of them to match the spec."""
    with recording(space) as recorder:
        yield recorder
    recorder.assert_valid()
