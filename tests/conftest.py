"""Root pytest configuration: fixtures that start the real parts the tests need."""

import pytest

from rooms.signalwire.sandbox import SandboxServer

SANDBOX_PROJECT_ID = "sandbox-project"
SANDBOX_API_TOKEN = "sandbox-token-for-tests-7f3a9c"


@pytest.fixture(scope="session")
def sandbox_server():
    """Run one sandbox Space over real HTTP on a free loopback port for the session."""
    server = SandboxServer(
        host="127.0.0.1", port=0, project_id=SANDBOX_PROJECT_ID, api_token=SANDBOX_API_TOKEN
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """Give a test an empty sandbox Space and point the portal's settings at it."""
    sandbox_server.space.reset()
    settings.SIGNALWIRE_SPACE_URL = sandbox_server.url
    settings.SIGNALWIRE_USES_SANDBOX = False
    settings.SIGNALWIRE_PROJECT_ID = SANDBOX_PROJECT_ID
    settings.SIGNALWIRE_API_TOKEN = SANDBOX_API_TOKEN
    yield sandbox_server.space
    sandbox_server.space.reset()
