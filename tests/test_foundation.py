"""The foundation: settings, system checks, Space URLs, first superuser, health page."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.checks import Error
from django.core.management import call_command

from rooms.checks import check_not_on_sandbox, check_signalwire_settings
from rooms.signalwire.urls import SpaceURLError, normalise_space_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.signalwire.com", "https://example.signalwire.com"),
        ("https://example.signalwire.com/", "https://example.signalwire.com"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:8765", "http://[::1]:8765"),
    ],
)
def test_space_urls_are_normalised(value, expected):
    assert normalise_space_url(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://example.signalwire.com", "unencrypted"),
        ("ftp://example.signalwire.com", "scheme"),
        ("https://user:pw@example.signalwire.com", "credentials"),
        ("https://example.signalwire.com/api/video", "without a path"),
        ("", "no Space URL"),
    ],
)
def test_bad_space_urls_are_refused_with_a_reason(value, message):
    with pytest.raises(SpaceURLError, match=message):
        normalise_space_url(value)


def _ids(problems):
    return sorted(p.id for p in problems)


def test_checks_are_quiet_when_signalwire_is_configured(settings):
    settings.SIGNALWIRE_USES_SANDBOX = False
    settings.SIGNALWIRE_SPACE_URL = "example.signalwire.com"
    settings.SIGNALWIRE_PROJECT_ID = "p-123"
    settings.SIGNALWIRE_API_TOKEN = "PTabc"
    assert check_signalwire_settings() == []
    assert check_not_on_sandbox() == []


def test_checks_name_missing_and_insecure_settings_with_hints(settings):
    settings.SIGNALWIRE_USES_SANDBOX = False
    settings.SIGNALWIRE_SPACE_URL = "http://example.signalwire.com"
    settings.SIGNALWIRE_PROJECT_ID = ""
    settings.SIGNALWIRE_API_TOKEN = ""
    problems = check_signalwire_settings()
    assert _ids(problems) == ["rooms.E001", "rooms.E002", "rooms.E002"]
    assert all(isinstance(p, Error) and p.hint for p in problems)
    assert "unencrypted" in problems[0].msg


def test_checks_reject_a_malformed_project_id_and_tiny_interval(settings):
    settings.SIGNALWIRE_USES_SANDBOX = False
    settings.SIGNALWIRE_SPACE_URL = "example.signalwire.com"
    settings.SIGNALWIRE_PROJECT_ID = "abc:def"
    settings.SIGNALWIRE_API_TOKEN = "PTabc"
    settings.SIGNALWIRE_SYNC_INTERVAL = 1
    assert _ids(check_signalwire_settings()) == ["rooms.E003", "rooms.E005"]


def test_deploy_check_refuses_the_sandbox(settings):
    settings.SIGNALWIRE_USES_SANDBOX = True
    assert _ids(check_not_on_sandbox()) == ["rooms.E006"]


def _manage(*args, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SIGNALWIRE_"))}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_like_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_extra={
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": "x" * 20 + "a-long-production-secret-key-1234567890",
            "DJANGO_ALLOWED_HOSTS": "portal.example.com",
            "SIGNALWIRE_SPACE_URL": "example.signalwire.com",
            "SIGNALWIRE_PROJECT_ID": "p-123",
            "SIGNALWIRE_API_TOKEN": "PT-not-a-real-token",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_and_a_secret_key_is_required_without_it():
    result = _manage("check", env_extra={"DJANGO_SETTINGS_MODULE": "portal.settings"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_first_superuser_is_created_once_with_a_printed_password(capsys):
    from django.contrib.auth import get_user_model

    call_command("ensure_local_superuser")
    first = capsys.readouterr().out
    assert "Created local superuser 'admin' with password" in first
    password = first.split("password '")[1].split("'")[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)

    call_command("ensure_local_superuser")
    second = capsys.readouterr().out
    assert password not in second
    assert "Log in as 'admin'" in second
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_health_reports_database_and_redis_without_secrets(client, settings, redis_client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["database"] == "ok" and body["redis"] == "ok"
    assert settings.SIGNALWIRE_API_TOKEN not in response.content.decode()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own, on a Unix socket: its counters see only this test."""
    import redis

    socket_path = tmp_path / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(socket_path))
    try:
        deadline = time.monotonic() + 10
        while True:  # until the server answers on its socket
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
                time.sleep(0.02)
        yield f"unix://{socket_path}", client
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.django_db
def test_health_reuses_one_redis_connection(client, settings, private_redis):
    url, admin = private_redis
    settings.REDIS_URL = url
    before = admin.info("stats")["total_connections_received"]
    for _ in range(5):
        assert client.get("/health/").json()["redis"] == "ok"
    # One new connection for all five checks (the admin client's own is counted before).
    assert admin.info("stats")["total_connections_received"] - before == 1


@pytest.mark.django_db
def test_health_says_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")
