"""Settings for the test suite: the normal settings with test-safe defaults."""

import os

# Tests never read the checkout's .env (make run writes one): they set what they need.
os.environ.setdefault("PORTAL_ENV_FILE", "")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-any-deployment")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("DJANGO_CSRF_COOKIE_SECURE", "false")
# Tests point the client at the in-process sandbox; retries stay short.
os.environ.setdefault("SIGNALWIRE_RETRY_BACKOFF", "0.01")
os.environ.setdefault("SIGNALWIRE_RETRY_MAX_WAIT", "2")
os.environ.setdefault("SIGNALWIRE_READ_TIMEOUT", "5")
# No test may wait on SignalWire inside a transaction (other than the test case's own);
# the worker the tests start inherits it.
os.environ.setdefault("SIGNALWIRE_REFUSE_IN_TRANSACTION", "true")

# The suite runs no beat: the heartbeat watch is off unless a test turns it on. Alert
# messages retry quickly.
os.environ.setdefault("ALERT_HEARTBEAT_STALE_SECONDS", "0")
os.environ.setdefault("ALERT_DELIVERY_BACKOFF", "0.2")
os.environ.setdefault("ALERT_DELIVERY_RETRIES", "3")
# A failure asks for a check within seconds; the name every test process gives the portal.
os.environ.setdefault("ALERT_CHECK_DELAY", "2")
os.environ.setdefault("PORTAL_NAME", "Acme meetings portal")

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests run with DEBUG off; only the tests of the second factor make it mandatory.
PORTAL_REQUIRE_OTP = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# A file, not memory, so a real Celery worker process can share the test database.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    (BASE_DIR / ".run").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(BASE_DIR / ".run" / f"test-db-{os.getpid()}.sqlite3")  # noqa: F405
    }
# Tests use their own Redis database for the broker and locks.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
# Each test session (and the worker it starts) keeps to its own queue and lock names, so
# two sessions on one machine never take each other's tasks or locks.
TEST_SESSION = os.environ.setdefault("PORTAL_TEST_SESSION", str(os.getpid()))
CELERY_TASK_DEFAULT_QUEUE = f"portal-test-{TEST_SESSION}"
REDIS_KEY_PREFIX = f"room-portal-test-{TEST_SESSION}:"
