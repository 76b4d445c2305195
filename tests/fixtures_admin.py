"""Fixtures shared by the service, hook, token and admin tests (import the ones you use)."""

from __future__ import annotations

import pytest

from rooms import outbox


@pytest.fixture
def queued(monkeypatch):
    """Record the pushes the outbox would queue instead of sending them to the broker."""
    calls: list[tuple] = []

    def push(kind: str, pk: int, *, delete: bool = False) -> bool:
        calls.append(("delete" if delete else "push", kind, pk))
        return True

    def remote_delete(kind: str, remote_id: str, space_id: int | None = None) -> bool:
        calls.append(("remote_delete", kind, remote_id, space_id))
        return True

    monkeypatch.setattr(outbox, "push_enqueue", push)
    monkeypatch.setattr(outbox, "remote_delete_enqueue", remote_delete)
    return calls


@pytest.fixture
def fast_push(settings):
    """Keep the push tasks' retry budget small so giving up takes no time in tests."""
    settings.SIGNALWIRE_PUSH_MAX_ATTEMPTS = 1
    settings.SIGNALWIRE_RETRIES = 0
    return settings


@pytest.fixture
def run_queued(queued):
    """Run the tasks `queued` recorded, in order, as a worker would; return their results."""
    from rooms.registry import RESOURCES
    from rooms.tasks import push

    tasks = {}
    for kind in RESOURCES:
        tasks["push", kind] = push.PUSH_TASKS[kind]
        tasks["delete", kind] = push.DELETE_TASKS[kind]
        tasks["remote_delete", kind] = push.delete_remote

    def run() -> list:
        results = []
        while queued:
            what, kind, ref, *space = queued.pop(0)
            args = [kind, ref, *space] if what == "remote_delete" else [ref]
            results.append(tasks[(what, kind)].apply(args=args))
        return results

    return run


@pytest.fixture
def room_data():
    """Build form-like data for a new room."""

    def build(name: str = "standup", **extra) -> dict:
        return {"name": name, "display_name": name.title(), "max_members": 12, **extra}

    return build


@pytest.fixture
def conference_data():
    """Build form-like data for a new conference."""

    def build(name: str = "allhands", **extra) -> dict:
        return {"name": name, "display_name": name.title(), "layout": "2x2", **extra}

    return build


def _field_post_value(bound) -> dict:
    """Render one bound field's current value the way a browser would post it."""
    from django import forms

    field, name, value = bound.field, bound.html_name, bound.value()
    widget = field.widget
    if isinstance(widget, forms.MultiWidget):
        parts = widget.decompress(value)
        return {f"{name}_{i}": "" if p is None else str(p) for i, p in enumerate(parts)}
    if isinstance(widget, forms.NullBooleanSelect):
        return {name: {True: "true", False: "false"}.get(value, "unknown")}
    if isinstance(widget, forms.CheckboxInput):
        return {name: "on"} if value else {}
    return {name: "" if value is None else str(value)}


@pytest.fixture
def form_post_data():
    """Turn a rendered admin add/change page into the POST data of its unchanged form."""

    def build(response, **changes) -> dict:
        data: dict = {"_save": "Save"}
        form = response.context["adminform"].form
        for name in form.fields:
            data.update(_field_post_value(form[name]))
        for inline in response.context["inline_admin_formsets"]:
            formset = inline.formset
            management = formset.management_form
            for name in management.fields:
                data[management.add_prefix(name)] = management[name].value()
            for sub in formset.forms:
                if sub.instance.pk:
                    data[sub.add_prefix("id")] = sub.instance.pk
        data.update(changes)
        return data

    return build


def confirmed(client, url: str, data: dict):
    """Open an action's confirmation page, then confirm it with the page's one-time nonce."""
    ask = {k: v for k, v in data.items() if k not in ("confirm", "nonce")}
    page = client.post(url, ask)
    assert page.status_code == 200 and "nonce" in page.context, page.status_code
    return client.post(url, {**ask, "confirm": "yes", "nonce": page.context["nonce"]})
