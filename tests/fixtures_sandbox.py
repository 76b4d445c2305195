"""The sandbox tests' client and fixtures: an authenticated Api and the spec check.

Also the plugin hooks for SignalWire's OpenAPI description (SIGNALWIRE_OPENAPI_SPEC): tests
marked `needs_spec` are skipped, with the reason, when it is not set; with
SIGNALWIRE_OPENAPI_SPEC_REQUIRED set, or with a path that names no file, the run stops.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import requests

from sandbox import SandboxServer
from tests.conftest import (
    SANDBOX_API_TOKEN,
    SANDBOX_B_API_TOKEN,
    SANDBOX_B_PROJECT_ID,
    SANDBOX_PROJECT_ID,
)
from tests.spec_validation import (
    SPEC_ENV,
    spec_available,
    spec_checked,
    spec_path,
    spec_problem,
    spec_required,
)

_UNCHECKED = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the needs_spec marker; refuse to run without a description that is required."""
    config.addinivalue_line(
        "markers", f"needs_spec: the test needs SignalWire's OpenAPI description ({SPEC_ENV})"
    )
    config.stash[_UNCHECKED] = []
    problem = spec_problem()
    if problem is not None and (spec_required() or spec_path() is not None):
        raise pytest.UsageError(problem)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests that need the description when there is none, each saying why."""
    problem = spec_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        if item.get_closest_marker("needs_spec"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say how many sandbox tests ran without their answers checked against the spec."""
    unchecked = config.stash.get(_UNCHECKED, [])
    if unchecked:
        terminalreporter.write_sep("-", "spec check off")
        terminalreporter.write_line(
            f"{len(unchecked)} sandbox tests ran their own assertions; their answers were not "
            f"checked against the spec. Why: {spec_problem()}"
        )


class Api:
    """A tiny authenticated client for the sandbox, used by the sandbox tests."""

    def __init__(self, server: SandboxServer, auth: Any = (SANDBOX_PROJECT_ID, SANDBOX_API_TOKEN)):
        self.base = server.url
        self.session = requests.Session()
        self.session.auth = auth

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request to the sandbox."""
        url = path if path.startswith("http") else f"{self.base}{path}"
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, url, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to a path."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        """PUT to a path."""
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE a path."""
        return self.request("DELETE", path, **kwargs)


def errors_by_attribute(response: requests.Response) -> dict[str, str]:
    """Map each 422 error's attribute to its message."""
    assert response.status_code == 422, response.text
    return {error["attribute"]: error["message"] for error in response.json()["errors"]}


@pytest.fixture
def sandbox_spec_checked(request, sandbox_server):
    """Every response the sandbox sends (from any project) during the test must match the
    OpenAPI spec.

    Without the description the test still runs its own assertions; the run's summary
    counts it among those not checked against the spec.
    """
    if not spec_available():
        request.config.stash[_UNCHECKED].append(request.node.nodeid)
        yield
        return
    with contextlib.ExitStack() as checks:
        for space in sandbox_server.spaces.values():  # every project's answers
            checks.enter_context(spec_checked(space))
        yield


@pytest.fixture
def api(sandbox, sandbox_server) -> Api:
    """An authenticated client for an empty sandbox."""
    return Api(sandbox_server)


@pytest.fixture
def api_b(sandbox_b, sandbox_server) -> Api:
    """An authenticated client for the sandbox's second project, empty."""
    return Api(sandbox_server, auth=(SANDBOX_B_PROJECT_ID, SANDBOX_B_API_TOKEN))


# --- other Spaces beside the environment's ----------------------------------------------


@pytest.fixture
def other_space(sandbox, sandbox_b, sandbox_server):
    """The Space row of the sandbox's second project (its token stored encrypted)."""
    from rooms.models import Space

    space = Space(name="Other", space_url=sandbox_server.url, project_id=SANDBOX_B_PROJECT_ID)
    space.set_token(SANDBOX_B_API_TOKEN)
    space.save()
    return space


@pytest.fixture
def refusing_space(sandbox, sandbox_server):
    """A Space row at the environment's sandbox with a token it refuses (HTTP 401)."""
    from rooms.models import Space

    space = Space(name="Refusing", space_url=sandbox_server.url, project_id=SANDBOX_PROJECT_ID)
    space.set_token("a-token-the-sandbox-refuses")
    space.save()
    return space


