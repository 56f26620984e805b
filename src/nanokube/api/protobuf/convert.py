"""The apimachinery types whose JSON form is not their protobuf structure.

``Time``/``MicroTime`` travel as ``{seconds, nanos}`` but are RFC 3339 strings in JSON; ``Duration`` is
nanoseconds but a Go duration string (``1h0m0s``); ``Quantity`` is ``{string}`` but a bare string;
``IntOrString`` is ``{type, intVal, strVal}`` but an int or a string; ``RawExtension`` and ``FieldsV1`` carry
raw JSON bytes that are embedded as parsed JSON. Each converter takes the message's bytes and returns the JSON
value, or ``DROP`` when Go's JSON encoder would write ``null`` (a zero time, an empty raw extension) so the
caller leaves the field out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from nanokube.api.protobuf.wire import WireError, iter_fields, signed

DROP: Any = object()  # sentinel: the field is absent in the JSON form

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME_SECONDS = -62135596800  # time.Time{}.Unix(): year 1, Go's zero time

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
DURATION = f"{META}.Duration"
FIELDS_V1 = f"{META}.FieldsV1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
QUANTITY_VALUE = "k8s.io.apimachinery.pkg.api.resource.QuantityValue"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

# Raw bytes that are themselves a protobuf envelope are decoded by the package's top-level decoder, which
# registers itself here (it lives above this module).
NestedDecoder = Callable[[bytes], Any]


def _ints(data: bytes | memoryview) -> dict[int, int]:
    """The varint fields of a small message by number (last one wins, as in protobuf)."""
    return {number: value for number, _wire_type, value in iter_fields(data) if isinstance(value, int)}


def _bytes_field(data: bytes | memoryview, wanted: int) -> bytes:
    found = b""
    for number, _wire_type, value in iter_fields(data):
        if number == wanted:
            if not isinstance(value, memoryview):
                raise WireError(f"field {number} should be length-delimited")
            found = bytes(value)
    return found


def _timestamp(data: bytes | memoryview) -> datetime | None:
    if len(data) == 0:
        return None
    ints = _ints(data)
    seconds = signed(ints.get(1, 0), 64)
    nanos = signed(ints.get(2, 0), 32)
    if seconds == _GO_ZERO_TIME_SECONDS and nanos == 0:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as exc:
        raise WireError(f"timestamp out of range: {seconds}s") from exc


def time_value(data: bytes | memoryview) -> Any:
    """``metav1.Time``: seconds precision, like its JSON form (the apiserver drops nanos too)."""
    when = _timestamp(data)
    return DROP if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time_value(data: bytes | memoryview) -> Any:
    """``metav1.MicroTime``: always six fractional digits (``2006-01-02T15:04:05.000000Z``)."""
    when = _timestamp(data)
    return DROP if when is None else when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def duration_value(data: bytes | memoryview) -> Any:
    return go_duration(signed(_ints(data).get(1, 0), 64))


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5s``, ``2m0s``, ``1h0m0s``, ``300ms``, ``1.5µs``, ``-3s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    rest = abs(nanoseconds)
    if rest < 1_000_000_000:
        if rest < 1_000:
            return f"{sign}{rest}ns"
        if rest < 1_000_000:
            whole, frac = _fraction(rest, 3)
            return f"{sign}{whole}{frac}µs"
        whole, frac = _fraction(rest, 6)
        return f"{sign}{whole}{frac}ms"
    whole_seconds, frac = _fraction(rest, 9)
    text = f"{whole_seconds % 60}{frac}s"
    minutes = whole_seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, digits: int) -> tuple[int, str]:
    scale = 10**digits
    tail = str(value % scale).rjust(digits, "0").rstrip("0")
    return value // scale, f".{tail}" if tail else ""


def quantity_value(data: bytes | memoryview) -> Any:
    text = _bytes_field(data, 1).decode("utf-8", errors="strict")
    return text or "0"


def int_or_string_value(data: bytes | memoryview) -> Any:
    """``IntOrString``: type 1 means the string form, anything else the int form."""
    kind = 0
    int_value = 0
    str_value = ""
    for number, _wire_type, value in iter_fields(data):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, int):
            int_value = signed(value, 32)
        elif number == 3 and isinstance(value, memoryview):
            str_value = bytes(value).decode("utf-8")
    return str_value if kind == 1 else int_value


def raw_json_value(raw: bytes, nested: NestedDecoder | None) -> Any:
    """Embedded raw bytes: JSON as parsed JSON, a nested ``k8s\\0`` protobuf object through ``nested``."""
    if not raw.strip():
        return DROP
    if nested is not None and raw.startswith(b"k8s\x00"):
        return nested(raw)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"embedded raw object is neither JSON nor protobuf: {exc}") from exc


def raw_extension_value(data: bytes | memoryview, nested: NestedDecoder | None = None) -> Any:
    return raw_json_value(_bytes_field(data, 1), nested)


def fields_v1_value(data: bytes | memoryview) -> Any:
    return raw_json_value(_bytes_field(data, 1), None)


SIMPLE_CONVERTERS: dict[str, Callable[[bytes | memoryview], Any]] = {
    TIME: time_value,
    MICRO_TIME: micro_time_value,
    DURATION: duration_value,
    QUANTITY: quantity_value,
    QUANTITY_VALUE: quantity_value,
    INT_OR_STRING: int_or_string_value,
    FIELDS_V1: fields_v1_value,
}
