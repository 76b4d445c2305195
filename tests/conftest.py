"""Root pytest configuration: fixtures that start the real parts the tests need."""

import os

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from sandbox import SandboxServer
from tests.waiting import wait_until

# Model and admin fixtures shared by the service, hook, admin and drill tests, and the
# sandbox tests' client and spec check.
pytest_plugins = ["tests.fixtures_admin", "tests.fixtures_sandbox", "tests.fixtures_alerts"]

# Property tests: CI replays the same generated examples every run, so it can never flake
# on an input a previous run did not see; a local run explores new random examples each
# time (and replays the failures it found, from .hypothesis/). HYPOTHESIS_PROFILE picks
# one explicitly; otherwise any CI environment (CI set, as CI runners and .ci/run do) gets
# "ci" and everything else "dev".
_PROPERTY_BASE = {
    # Built on hypothesis's own defaults, never on a profile it loaded by itself.
    "parent": hypothesis_settings.get_profile("default"),
    "deadline": None,  # a busy machine is no bug
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
hypothesis_settings.register_profile(
    "ci", derandomize=True, max_examples=200, database=None, print_blob=True, **_PROPERTY_BASE
)
hypothesis_settings.register_profile("dev", max_examples=100, **_PROPERTY_BASE)


def hypothesis_profile(environ=os.environ) -> str:
    """Name the hypothesis profile for this run: explicit, else "ci" on CI, else "dev"."""
    explicit = environ.get("HYPOTHESIS_PROFILE", "").strip()
    if explicit:
        return explicit
    on_ci = environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return "ci" if on_ci else "dev"


hypothesis_settings.load_profile(hypothesis_profile())

SANDBOX_PROJECT_ID = "sandbox-project"
SANDBOX_API_TOKEN = "sandbox-token-for-tests-7f3a9c"
# The second project (a second Space) the same server answers for: fixture sandbox_b.
SANDBOX_B_PROJECT_ID = "sandbox-project-b"
SANDBOX_B_API_TOKEN = "sandbox-token-b-for-tests-41d6e2"


@pytest.fixture(scope="session")
def sandbox_server():
    """Run the sandbox over real HTTP on a free loopback port for the session: its first
    project is the fixture sandbox's Space, its second sandbox_b's."""
    server = SandboxServer(
        host="127.0.0.1", port=0, project_id=SANDBOX_PROJECT_ID, api_token=SANDBOX_API_TOKEN
    )
    server.add_project(SANDBOX_B_PROJECT_ID, SANDBOX_B_API_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """Give a test an empty sandbox Space and point the portal's settings at it."""
    # A request an earlier test left waiting on a latency fault is answered first, so it
    # never acts on, or is logged in, this test's Space.
    assert sandbox_server.wait_until_answered(), "a sandbox request never got its answer"
    sandbox_server.space.reset()
    settings.SIGNALWIRE_SPACE_URL = sandbox_server.url
    settings.SIGNALWIRE_USES_SANDBOX = False
    settings.SIGNALWIRE_PROJECT_ID = SANDBOX_PROJECT_ID
    settings.SIGNALWIRE_API_TOKEN = SANDBOX_API_TOKEN
    yield sandbox_server.space
    sandbox_server.wait_until_answered()
    sandbox_server.space.reset()


@pytest.fixture
def sandbox_b(sandbox_server):
    """Give a test the sandbox's second project, empty: another Space on the same server."""
    space = sandbox_server.spaces[SANDBOX_B_PROJECT_ID]
    assert sandbox_server.wait_until_answered(), "a sandbox request never got its answer"
    space.reset()
    yield space
    sandbox_server.wait_until_answered()
    space.reset()


def database_url(settings_dict: dict) -> str:
    """Build a DATABASE_URL that points another process at the test database."""
    from urllib.parse import quote

    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def redis_client():
    """A client of the real Redis the tests use (its own database, emptied first)."""
    import redis
    from django.conf import settings

    class SessionRedis(redis.Redis):
        """Redis whose flushdb() empties only this test session's queue and locks."""

        def flushdb(self, *args, **kwargs) -> bool:
            keys = [settings.CELERY_TASK_DEFAULT_QUEUE]
            keys += list(self.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"))
            self.delete(*keys)
            return True

    client = SessionRedis.from_url(settings.REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis does not answer at {settings.REDIS_URL}: {exc} (run `make test`)")
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, django_db_blocker, sandbox_server, redis_client, smtp_server
):
    """Run a real Celery worker process against the test database, Redis and the sandbox."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    from portal.celery import app

    name = f"test-worker-{os.getpid()}@{socket.gethostname()}"
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    root = Path(__file__).resolve().parents[1]
    log_path = root / ".run" / "test-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": db_url,
        "SIGNALWIRE_SPACE_URL": sandbox_server.url,
        "SIGNALWIRE_PROJECT_ID": SANDBOX_PROJECT_ID,
        "SIGNALWIRE_API_TOKEN": SANDBOX_API_TOKEN,
        "SIGNALWIRE_SYNC_ON_START": "false",
        # Alert emails from the worker reach the session's SMTP server.
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": smtp_server.host,
        "EMAIL_PORT": str(smtp_server.port),
    }
    redis_client.flushdb()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--include",
                "tests.worker_setup",
                "--hostname",
                name,
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.name = name  # type: ignore[attr-defined]
    try:

        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the Celery worker exited; see {log_path}")
            # Only this session's worker: other sessions' workers share the broker.
            return bool(app.control.ping(destination=[name], timeout=0.5))

        wait_until(answers, timeout=30, interval=0, message=f"the Celery worker; see {log_path}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def worker_idle(app, name: str) -> bool:
    """Drop what is queued for the worker and tell whether it has nothing left to run.

    Tasks it already holds (prefetched, or waiting for a retry's countdown) are revoked, so
    they are dropped when their turn comes; a busy solo worker does not answer at all.
    """
    purged = app.control.purge()
    inspect = app.control.inspect(destination=[name], timeout=1.0)
    active = (inspect.active() or {}).get(name)
    reserved = (inspect.reserved() or {}).get(name)
    scheduled = (inspect.scheduled() or {}).get(name)
    if active is None or reserved is None or scheduled is None:
        return False
    held = {t["id"] for t in reserved} | {t["request"]["id"] for t in scheduled}
    revoked = set((inspect.revoked() or {}).get(name) or ())
    if held - revoked:
        app.control.revoke(sorted(held - revoked), destination=[name])
        return False
    return not purged and not active and not reserved


def worker_settle(proc) -> None:
    """Wait until the session's worker is idle with nothing queued (or fail saying so)."""
    from portal.celery import app

    wait_until(
        lambda: worker_idle(app, proc.name),
        timeout=120,
        interval=0.1,
        message="the Celery worker to finish its tasks (see .run/test-worker.log)",
    )


@pytest.fixture
def celery_worker(celery_worker_process):
    """The session's real Celery worker, for one test that starts with it idle and ends so.

    Before and after the test the queue is purged and the worker's remaining tasks are
    finished or revoked, so no task (a drill's retried push) runs during a later test.
    """
    worker_settle(celery_worker_process)
    yield celery_worker_process
    worker_settle(celery_worker_process)


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that uses the real worker as such (`-m "not worker"` skips them)."""
    for item in items:
        if "celery_worker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.worker)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    import os

    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # make around it are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser page; its screenshot is kept under artifacts/ after the test."""
    from pathlib import Path

    from tests.browser_helpers import CspWatch

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    csp = CspWatch(context)  # any Content-Security-Policy violation fails the test
    page = context.new_page()
    page.csp = csp
    page.set_default_timeout(15000)
    yield page
    shots = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{request.node.name}-final.png"), full_page=True)
    try:
        csp.assert_none(page)
    finally:
        context.close()


@pytest.fixture
def screenshot(page, request):
    """Save a named screenshot of the current page as a test artifact."""
    from pathlib import Path

    shots = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = shots / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
