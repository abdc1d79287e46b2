"""Strict JSON shapes: a cattrs converter that refuses wrong types, and words
for what was wrong.

Everything the daemon reads from outside (OAuth answers, signaling frames, the
token file) is JSON structured into attrs classes by a converter made here.
cattrs' default converter would happily turn ``123`` into ``"123"`` or
``True`` into ``1.0``, which would hide a misbehaving peer; this one raises
:class:`FieldProblem`, whose message never quotes the value (it may be a
token). :func:`describe_structure_error` turns a cattrs failure into
``"missing field 'user_code'"``-style text that is safe to log.
"""

from __future__ import annotations

import math
from typing import Any, NewType

import cattrs
from cattrs import AttributeValidationNote, ClassValidationError

Text = NewType("Text", str)
"""Any JSON string."""

VisibleText = NewType("VisibleText", str)
"""A non-empty string of RFC 6749 VSCHARs (printable ASCII, space included).
Tokens go into HTTP headers and codes are printed on a terminal: a control
character in either would be an injection, so it is refused."""

Seconds = NewType("Seconds", float)
"""A finite, non-negative JSON number (int or float, never a bool)."""


class FieldProblem(ValueError):
    """Raised by the structure hooks with a message that never quotes the value."""


def _structure_text(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise FieldProblem(f"is not a string (got {json_type_name(value)})")
    return value


def _structure_visible_text(value: Any, _type: Any) -> str:
    text = _structure_text(value, _type)
    if not text:
        raise FieldProblem("is empty")
    if not is_visible_ascii(text):
        raise FieldProblem("contains characters outside printable ASCII")
    return text


def _structure_seconds(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldProblem(f"is not a number of seconds (got {json_type_name(value)})")
    try:
        seconds = float(value)
    except OverflowError:
        raise FieldProblem("is too large") from None
    if not math.isfinite(seconds):
        raise FieldProblem("is not a finite number")
    if seconds < 0:
        raise FieldProblem("is negative")
    return seconds


def make_strict_converter() -> cattrs.Converter:
    """A converter that refuses wrong JSON types instead of coercing them."""
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    converter.register_structure_hook(Text, _structure_text)
    converter.register_structure_hook(str, _structure_text)
    converter.register_structure_hook(VisibleText, _structure_visible_text)
    converter.register_structure_hook(Seconds, _structure_seconds)
    return converter


STRICT_CONVERTER = make_strict_converter()


def is_visible_ascii(text: str) -> bool:
    return all(0x20 <= ord(char) <= 0x7E for char in text)


def json_type_name(value: Any) -> str:
    names: dict[type, str] = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def describe_structure_error(error: Exception) -> str:
    """``"missing field 'user_code'"``-style text for a cattrs failure."""
    if not isinstance(error, ClassValidationError):
        return "the body does not have the expected shape"
    problems: list[str] = []
    for sub in error.exceptions:
        notes = [n for n in getattr(sub, "__notes__", []) if isinstance(n, AttributeValidationNote)]
        field = notes[0].name if notes else "?"
        if isinstance(sub, KeyError):
            problems.append(f"missing field '{field}'")
        elif isinstance(sub, FieldProblem):
            problems.append(f"field '{field}' {sub}")
        else:
            # Foreign exception text may quote the value: say only where it was.
            problems.append(f"field '{field}' has an invalid value")
    return "; ".join(problems) or "the body does not have the expected shape"
