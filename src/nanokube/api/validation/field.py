"""Field paths and field errors, worded as apimachinery's ``util/validation/field`` words them.

Kubernetes prints a path as ``spec.template.spec.containers[0].image`` (``Child``/``Index``) and map keys as
``metadata.annotations[foo]`` (``Key``). Invalid values are printed plainly when they are strings, numbers or
booleans and as compact JSON otherwise (``{"app":"web"}``), exactly as ``field.Error.ErrorBody`` does since it
started to marshal complex values. ``FieldError`` (errors.py) prints scalars itself; here complex values are
wrapped so that ``str()`` gives the JSON, and the two error types ``FieldError`` does not print a value for
(``NotFound``, ``TooMany``) get a small subclass. Validators use only these constructors.
"""

from __future__ import annotations

import json
from typing import Any

from nanokube.api.errors import FieldError

Errors = list[FieldError]


def child(path: str, *names: str) -> str:
    """``spec`` + ``template`` -> ``spec.template``."""
    for name in names:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


class GoJSON:
    """A complex invalid value, printed the way Go's ``json.Marshal`` prints it."""

    __slots__ = ("text",)

    def __init__(self, value: Any, sort_keys: bool = False) -> None:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
        self.text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def render(value: Any, sort_keys: bool = False) -> Any:
    """Scalars stay as they are (FieldError prints them); dicts and lists print as Go's JSON."""
    if isinstance(value, dict | list | tuple):
        return GoJSON(value, sort_keys=sort_keys)
    return value


def labels_value(labels: Any) -> GoJSON:
    """A ``map[string]string`` as Go marshals it: keys sorted."""
    return GoJSON(labels if isinstance(labels, dict) else {}, sort_keys=True)


class _ValuedError(FieldError):
    """``NotFound`` and ``TooMany``: types whose message carries the value but which FieldError does not print."""

    _TEXT = {"NotFound": "Not found", "TooMany": "Too many"}

    def message(self) -> str:
        text = f"{self._TEXT.get(self.kind, self.kind)}: {self._value_text()}"
        if self.detail:
            text += f": {self.detail}"
        return text


def required(path: str, detail: str = "") -> FieldError:
    return FieldError.required(path, detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError.invalid(path, render(value), detail)


def not_supported(path: str, value: Any, valid: list[str] | tuple[str, ...]) -> FieldError:
    return FieldError.not_supported(path, render(value), list(valid))


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError.forbidden(path, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError.duplicate(path, render(value))


def not_found(path: str, value: Any) -> FieldError:
    return _ValuedError("NotFound", path, render(value))


def too_long(path: str, max_length: int) -> FieldError:
    unit = "byte" if max_length == 1 else "bytes"
    return FieldError("TooLong", path, detail=f"may not be more than {max_length} {unit}")


def immutable(path: str, new: Any, old: Any) -> Errors:
    """``ValidateImmutableField``: ``Invalid value: <new>: field is immutable`` when the value changed."""
    if new == old:
        return []
    return [invalid(path, new, "field is immutable")]


def nonnegative(path: str, value: Any) -> Errors:
    """``ValidateNonnegativeField``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def as_int(value: Any) -> int | None:
    """An integer field's value, or None when absent or not an integer (schema checks catch those)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""
