"""Strict JSON from staff (meta, room_meta): plain JSON only, finite numbers, bounded depth.

Python's json module takes NaN, Infinity and numbers too large for a float (1e999 becomes
infinity), none of which is JSON: the database refuses them when the value is stored and
SignalWire when it is sent. Deeply nested input exhausts the recursion limit of the
parser, of the encoder and of every check that walks the value. Both are refused here,
with a message for the field, before anything else looks at the value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# Far deeper than any meta a person writes, far shallower than the recursion limit.
MAX_DEPTH = 32
DEPTH_ERROR = f"JSON nested more than {MAX_DEPTH} levels deep is not accepted."
NUMBER_ERROR = (
    "Only finite numbers are JSON: NaN, Infinity and numbers too large to store "
    "(such as 1e999) are not accepted."
)
# A JSON string, escapes included: its brackets do not count towards the depth.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def problem(value: Any) -> str | None:
    """Say why an already parsed value is not strict JSON, or None when it is."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return NUMBER_ERROR
        if isinstance(item, dict | list | tuple):
            if depth > MAX_DEPTH:
                return DEPTH_ERROR
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _text_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    deepest = depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(NUMBER_ERROR)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(NUMBER_ERROR)
    return number


def loads(text: str | bytes) -> Any:
    """Parse strict JSON; raise ValueError (with a message for staff) for anything else."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if _text_depth(text) > MAX_DEPTH:
        raise ValueError(DEPTH_ERROR)
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def validate(value: Any) -> None:
    """Raise ValidationError when a parsed value is not strict JSON (a model validator)."""
    message = problem(value)
    if message:
        raise ValidationError(message, code="invalid")


class StrictJSONField(forms.JSONField):
    """A form JSONField that refuses NaN, infinite numbers and deep nesting on its field."""

    def to_python(self, value: Any) -> Any:
        """Parse the posted text strictly; a value already parsed is checked the same way."""
        if self.disabled or value in self.empty_values:
            return super().to_python(value)
        if not isinstance(value, str):
            validate(value)
            return super().to_python(value)
        try:
            loads(value)
        except (ValueError, RecursionError) as exc:
            if str(exc) in (DEPTH_ERROR, NUMBER_ERROR):
                raise ValidationError(str(exc), code="invalid") from None
            # Not JSON at all (or an integer of thousands of digits).
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        """Show refused input back as it was typed, never parse it again loosely."""
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            loads(data)
        except (ValueError, RecursionError):
            return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)
