"""Checks of the conference and room forms that mirror what SignalWire's API can take.

- A change PUT cannot express (clearing a schedule, remove_at, remove_after_seconds_elapsed
  or meta: PUT keeps what it is not sent and takes no nulls) is refused on its field, with
  what can be done instead: saying "saved" while the old value comes back would mislead.
- meta must be a JSON object, as the API's schema says; `[]` is not "no meta".
- A value the sync took in that the form would refuse (a NUL character, a description
  longer than the API now allows) does not block the rest of the form: the field says what
  is odd about it, and while it is left as it is it is neither validated nor sent.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import FieldDoesNotExist

from rooms.signalwire import schema

META_TYPE_ERROR = (
    'Meta must be a JSON object, such as {{"topic": "demo"}}; SignalWire refuses {kind}.'
)
# Form fields whose stored value is checked for oddities (plain values, not split widgets).
CHECKED_FIELD_TYPES = (forms.CharField, forms.IntegerField, forms.JSONField)
ODD_NOTE = (
    "SignalWire holds a value here that the portal would refuse ({reasons}). It is kept as "
    "it is, and left out of the save, unless you change it."
)
# The same for a value set here (a shell, a script) that SignalWire does not hold yet.
ODD_LOCAL_NOTE = (
    "This row holds a value that the portal would refuse ({reasons}); SignalWire will "
    "refuse it too. Correct it to save it."
)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "this value"


def _stored(form: forms.ModelForm, name: str) -> Any:
    return getattr(form.instance, name, None) if form.instance.pk else None


def _same_text(initial: Any, data: Any) -> bool:
    """Tell a re-posted stored text from an edit, as browsers send it back.

    A browser sends a NUL character back as U+FFFD and a line break as CR LF; the form
    strips the ends.
    """
    if not isinstance(initial, str) or not isinstance(data, str):
        return False

    def norm(text: str) -> str:
        return text.replace("\r\n", "\n").replace("\x00", "\ufffd").strip()

    return norm(initial) == norm(data)


def mark_odd_values(form: forms.ModelForm) -> None:
    """Note on each field whose stored value the form itself would refuse (call in __init__)."""
    odd_values: dict[str, Any] = {}
    cast(Any, form)._odd_values = odd_values
    if not form.instance.pk:
        return
    for name, field in form.fields.items():
        value = _stored(form, name)
        if value in (None, "") or field.disabled or not isinstance(field, CHECKED_FIELD_TYPES):
            continue
        try:
            field.clean(value)
            # The model's own validators (a TextField's length limit) run after the form's.
            model_field = form.instance._meta.get_field(name)
            model_field.run_validators(model_field.to_python(value))
        except FieldDoesNotExist:
            continue
        except forms.ValidationError as exc:
            reasons = "; ".join(m.rstrip(".") for m in exc.messages)
            remote = form.instance.raw if isinstance(form.instance.raw, dict) else {}
            if remote.get(name) == value:
                odd_values[name] = value
                note = ODD_NOTE.format(reasons=reasons)
            else:
                # Not SignalWire's own value: it is validated like any other input.
                note = ODD_LOCAL_NOTE.format(reasons=reasons)
            field.help_text = f"{note} {field.help_text}".strip()
            field.widget.attrs["class"] = f"{field.widget.attrs.get('class', '')} sw-odd".strip()


def check_mirror_form(form: forms.ModelForm, cleaned: dict[str, Any]) -> None:
    """Refuse what the API cannot take; let odd stored values that are left alone through."""
    _keep_odd_values(form, cleaned)
    meta = cleaned.get("meta")
    if "meta" in form.fields and meta is not None and not isinstance(meta, dict):
        form.add_error("meta", META_TYPE_ERROR.format(kind=_json_kind(meta)))
    checked = [
        name
        for name in schema.UPDATE_NOT_CLEARABLE
        if name in form.fields and not form.fields[name].disabled and name not in form.errors
    ]
    refused = schema.update_clear_errors(
        {name: cleaned.get(name) for name in checked},
        {name: _stored(form, name) for name in checked},
    )
    for name, message in refused.items():
        form.add_error(name, message)


def _keep_odd_values(form: forms.ModelForm, cleaned: dict[str, Any]) -> None:
    """Drop the errors of odd stored values posted back unchanged, and keep them as stored."""
    for name, value in getattr(form, "_odd_values", {}).items():
        posted = form[name].data
        unchanged = _same_text(value, posted) if isinstance(value, str) else (
            not form.fields[name].has_changed(value, posted)
        )
        if not unchanged:
            continue
        form.errors.pop(name, None)
        cleaned[name] = value
        # The model's own checks would refuse it again; it is kept as it was, so skip them.
        cast(Any, form)._unknown[name] = value
