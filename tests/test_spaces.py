"""Spaces: where each is, its API token never kept in plain text, what is wrong with one."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from rooms import space_tokens
from rooms.models import Space, environment_space

TOKEN = "PT-live-token-5b2f0e7d"

pytestmark = pytest.mark.django_db


def stored_columns(space: Space) -> str:
    """Every column of the Space's row as the database holds it, joined."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM rooms_space WHERE id = %s", [space.pk])
        return " ".join(str(value) for value in cursor.fetchone())


def test_a_stored_token_is_encrypted_and_read_back_only_through_credentials():
    space = Space(name="Prod", space_url="https://prod.example.com", project_id="p-1")
    space.set_token(TOKEN)
    space.save()
    assert TOKEN not in stored_columns(space)
    assert Space.objects.get(pk=space.pk).credentials().api_token == TOKEN
    assert TOKEN not in repr(space.credentials())


def test_a_token_from_an_environment_variable_is_read_at_call_time(monkeypatch):
    space = Space.objects.create(
        name="Env", space_url="https://env.example.com", project_id="p",
        token_env="SIGNALWIRE_PROD_TOKEN",
    )
    monkeypatch.setenv("SIGNALWIRE_PROD_TOKEN", "first")
    assert space.credentials().api_token == "first"
    monkeypatch.setenv("SIGNALWIRE_PROD_TOKEN", "second")
    assert space.credentials().api_token == "second"
    assert "first" not in stored_columns(space) and "second" not in stored_columns(space)


def test_rotating_the_keys_keeps_every_token_readable(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SPACE_TOKEN_KEYS = [old_key]
    space = Space(name="Rot", space_url="https://rot.example.com", project_id="p")
    space.set_token(TOKEN)
    space.save()
    settings.SPACE_TOKEN_KEYS = [new_key, old_key]
    assert space.credentials().api_token == TOKEN
    space.token_encrypted = space_tokens.rotate(space.token_encrypted)
    settings.SPACE_TOKEN_KEYS = [new_key]
    assert space.credentials().api_token == TOKEN
    settings.SPACE_TOKEN_KEYS = [old_key]
    with pytest.raises(space_tokens.TokenUnreadable):
        space.credentials()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"space_url": ""}, "its Space URL is missing"),
        ({"space_url": "ftp://x.example.com"}, "is not an http(s) URL with a host"),
        ({"space_url": "http://x.example.com"}, "must use HTTPS"),
        ({"project_id": ""}, "its project ID is missing"),
        ({"token_env": "SIGNALWIRE_UNSET_VAR"}, "SIGNALWIRE_UNSET_VAR it names is unset"),
        ({"token_env": "SECRET_KEY"}, "its token variable must start with SIGNALWIRE_"),
        ({"token_encrypted": "not-a-fernet-token"}, "cannot be decrypted"),
    ],
)
def test_a_space_says_what_keeps_it_from_being_reached(fields, problem):
    space = Space(name="Broken", space_url="https://ok.example.com", project_id="p")
    space.set_token(TOKEN)
    for name, value in fields.items():
        setattr(space, name, value)
    if "token_env" in fields:
        space.token_encrypted = ""
    found = space.problems()
    assert any(problem in text for text in found), found
    assert all(TOKEN not in text for text in found)


def test_a_healthy_space_and_the_environments_have_no_problem(sandbox):
    space = Space(name="Fine", space_url="http://127.0.0.1:9", project_id="p")
    space.set_token(TOKEN)
    assert space.problems() == []
    assert environment_space().problems() == []


def test_make_run_adds_the_sandboxs_extra_projects_as_spaces_once(settings):
    settings.SIGNALWIRE_USES_SANDBOX = True
    settings.SIGNALWIRE_SPACE_URL = "http://127.0.0.1:8765"
    for _ in range(2):
        call_command("ensure_sandbox_spaces", "--spaces", "3", stdout=io.StringIO())
    first = environment_space()
    extra = Space.objects.exclude(pk=first.pk).order_by("name")
    assert [(s.name, s.project_id) for s in extra] == [
        (f"{first.name} 2", "sandbox-project-2"),
        (f"{first.name} 3", "sandbox-project-3"),
    ]
    assert extra[0].credentials().api_token == "sandbox-token-2"
    assert extra[0].problems() == []

    settings.SIGNALWIRE_SPACE_URL = "http://127.0.0.1:9999"
    call_command("ensure_sandbox_spaces", "--spaces", "2", stdout=io.StringIO())
    assert Space.objects.get(name=f"{first.name} 2").space_url == "http://127.0.0.1:9999"
