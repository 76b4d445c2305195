"""The sandbox tests' client and fixtures: an authenticated Api and the spec check."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox import SandboxServer
from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_PROJECT_ID
from tests.spec_validation import spec_checked


class Api:
    """A tiny authenticated client for the sandbox, used by the sandbox tests."""

    def __init__(self, server: SandboxServer, auth: Any = (SANDBOX_PROJECT_ID, SANDBOX_API_TOKEN)):
        self.base = server.url
        self.session = requests.Session()
        self.session.auth = auth

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request to the sandbox."""
        url = path if path.startswith("http") else f"{self.base}{path}"
        return self.session.request(method, url, timeout=10, **kwargs)

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
def sandbox_spec_checked(sandbox_server):
    """Every response the sandbox sends during the test must match the OpenAPI spec."""
    with spec_checked(sandbox_server.space):
        yield


@pytest.fixture
def api(sandbox, sandbox_server) -> Api:
    """An authenticated client for an empty sandbox."""
    return Api(sandbox_server)
