"""A local checkout after `make run`: its generated .env lets plain shells run manage.py."""

import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
ENSURE_DOTENV = ROOT / "scripts" / "ensure-dotenv"


def ensure_dotenv(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ENSURE_DOTENV), "--path", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    )


def plain_shell_env(env_file: Path, **extra: str) -> dict:
    """What a new terminal has: no DJANGO_* or SIGNALWIRE_* variables, no secret key."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    # The checkout's own .env stays untouched: the test points the settings at its copy.
    env["PORTAL_ENV_FILE"] = str(env_file)
    env.update(extra)
    return env


def manage(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_first_run_writes_a_private_env_file_with_a_generated_key(tmp_path):
    path = tmp_path / ".env"

    first = ensure_dotenv(path)

    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = [line.split("=", 1)[1] for line in text.splitlines()
            if line.startswith("DJANGO_SECRET_KEY=")]
    assert len(keys) == 1 and len(keys[0]) >= 50 and len(set(keys[0])) >= 5
    # DEBUG stays off outside `make run` unless the user turns it on.
    assert not any(line.startswith("DJANGO_DEBUG") for line in text.splitlines())
    assert keys[0] not in first.stdout
    assert "wrote .env" in first.stdout
    # No token of any Space is ever written: the Space lines stay commented out.
    assert not any(line.startswith("SIGNALWIRE_") for line in text.splitlines())

    again = ensure_dotenv(path)

    assert path.read_text() == text
    assert "kept .env" in again.stdout
    other = tmp_path / "other.env"
    ensure_dotenv(other)
    assert keys[0] not in other.read_text()


def test_an_existing_env_file_keeps_its_lines_and_gains_a_key_when_it_has_none(tmp_path):
    path = tmp_path / ".env"
    path.write_text("SIGNALWIRE_SPACE_URL=example.signalwire.com")
    path.chmod(0o644)

    ensure_dotenv(path)

    lines = path.read_text().splitlines()
    assert lines[0] == "SIGNALWIRE_SPACE_URL=example.signalwire.com"
    assert sum(line.startswith("DJANGO_SECRET_KEY=") for line in lines) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
def default_sandbox():
    """A sandbox Space with the credentials the settings default to when no Space is set."""
    server = SandboxServer(
        host="127.0.0.1", port=0, project_id="sandbox-project", api_token="sandbox-token"
    )
    server.start()
    server.space.seed(conferences=3, rooms=2, seed=17)
    yield server
    server.stop()


def test_manage_commands_work_in_a_plain_shell_after_the_env_step(tmp_path, default_sandbox):
    from django.conf import settings

    env_file = tmp_path / ".env"
    env = plain_shell_env(
        env_file,
        # make run's defaults would be db.sqlite3 and port 8765; the test keeps its own.
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SIGNALWIRE_SANDBOX_PORT=str(default_sandbox.port),
        REDIS_URL=settings.REDIS_URL,
        REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}local-env:",
    )

    before = manage("sync_signalwire", "--help", env=env)
    assert before.returncode != 0 and "Set DJANGO_SECRET_KEY" in before.stderr

    ensure_dotenv(env_file)

    helped = manage("sync_signalwire", "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    assert "--conferences" in helped.stdout
    migrated = manage("migrate", "--noinput", "-v", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    synced = manage("sync_signalwire", env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Sync complete." in synced.stdout
    summaries = [line.strip() for line in synced.stdout.splitlines() if ": Succeeded" in line]
    assert any(s.startswith("Conferences:") and "seen 3, created 3," in s for s in summaries)
    assert any(s.startswith("Rooms:") and "seen 2, created 2," in s for s in summaries)
    assert any(r["path"] == "/api/video/conferences" for r in default_sandbox.space.requests)


def test_the_sandbox_command_starts_in_a_plain_shell_after_the_env_step(tmp_path):
    env_file = tmp_path / ".env"
    ensure_dotenv(env_file)

    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox_space", "--port", "0", "--seed-rooms", "1"],
        cwd=ROOT, env=plain_shell_env(env_file), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    try:
        seen = []
        deadline = time.monotonic() + 60
        while not any("serving at" in line for line in seen):
            assert proc.poll() is None, seen
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        assert "Sandbox Space serving at http://127.0.0.1:" in seen[-1], seen
        assert "0 conferences, 1 rooms" in seen[-1]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
