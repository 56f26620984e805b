"""Schema-driven decoding of Kubernetes protobuf messages into the dicts their JSON form would give.

The field table says, for every field number, the JSON name and what Go's ``encoding/json`` would do with the Go
field; this module walks the wire fields and applies it, so the result equals what the same client would have
sent as JSON (bar ``creationTimestamp: null``, which is dropped). The rules, and why:

* Scalars: go-to-protobuf writes every non-pointer scalar, even ``""``/``0``/``false``. A non-pointer field
  tagged ``omitempty`` loses its zero value (as in JSON); a field without ``omitempty`` keeps it
  (``containerPort``, ``allowed``); a pointer field keeps whatever was sent (``replicas: 0`` stays).
* Messages: a non-pointer struct is always written and JSON always writes it too, so ``status: {}`` and
  ``strategy: {}`` stay (unless tagged ``omitzero`` and empty); pointer structs appear only when set.
  Embedded structs tagged ``json:",inline"`` (``VolumeSource`` in ``Volume``) are merged into their parent.
* Repeated fields and maps appear only when non-empty (protobuf cannot tell nil from empty).
* ``bytes`` become base64 strings; the apimachinery special types go through ``convert``.
* Unknown field numbers are skipped, as Go's unmarshaller does; a known field with the wrong wire type is an
  error.
"""

from __future__ import annotations

import base64
from typing import Any

from nanokube.api.protobuf import convert
from nanokube.api.protobuf.table import Field, fields_of, message_name, table
from nanokube.api.protobuf.wire import (
    FIXED32,
    FIXED64,
    LENGTH_DELIMITED,
    VARINT,
    WireError,
    as_double,
    as_float,
    iter_fields,
    signed,
    unpack_fixed,
    unpack_varints,
)

MAGIC = b"k8s\x00"
UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"

_ZERO: dict[str, Any] = {
    "string": "",
    "bytes": "",
    "bool": False,
    "int32": 0,
    "int64": 0,
    "uint32": 0,
    "uint64": 0,
    "double": 0.0,
    "float": 0.0,
}
_VARINT_TYPES = frozenset({"bool", "int32", "int64", "uint32", "uint64"})
_FIXED_SIZE = {"double": 8, "float": 4}


class UnknownKind(WireError):
    """The envelope names an apiVersion/kind the table has no message for."""


def decode_envelope(body: bytes, api_version: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """Decode ``k8s\\0`` + ``runtime.Unknown`` into the object dict, ``apiVersion`` and ``kind`` first.

    ``api_version``/``kind`` are used when the envelope's TypeMeta leaves them empty.
    """
    if not body.startswith(MAGIC):
        raise WireError(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    type_meta, raw, encoding, content_type = _read_unknown(memoryview(body)[len(MAGIC) :])
    if encoding:
        raise WireError(f"unsupported content encoding {encoding!r} in protobuf envelope")
    if content_type and "protobuf" not in content_type:
        raise WireError(f"unsupported content type {content_type!r} in protobuf envelope")
    version = type_meta.get("apiVersion") or api_version or ""
    kind_name = type_meta.get("kind") or kind or ""
    message = message_name(version, kind_name)
    if message is None:
        raise UnknownKind(f'no kind "{kind_name}" is registered for version "{version}"')
    obj = decode_message(raw, message)
    if not isinstance(obj, dict):
        raise WireError(f"{message} does not decode to an object")
    head: dict[str, Any] = {"apiVersion": version, "kind": kind_name}
    head.update((key, value) for key, value in obj.items() if key not in head)
    return head


def _read_unknown(data: memoryview) -> tuple[dict[str, str], memoryview, str, str]:
    type_meta: dict[str, str] = {}
    raw = memoryview(b"")
    encoding = content_type = ""
    for number, wire_type, value in iter_fields(data):
        if not isinstance(value, memoryview):
            raise WireError(f"runtime.Unknown field {number} has wire type {wire_type}")
        if number == 1:
            for sub, _sub_type, text in iter_fields(value):
                if sub in (1, 2) and isinstance(text, memoryview):
                    type_meta["apiVersion" if sub == 1 else "kind"] = _text(text)
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value)
        elif number == 4:
            content_type = _text(value)
    return type_meta, raw, encoding, content_type


def decode_message(data: bytes | memoryview, message: str) -> Any:
    """Decode one message of type ``message`` (full proto name) into its JSON value."""
    simple = convert.SIMPLE_CONVERTERS.get(message)
    if simple is not None:
        return simple(data)
    if message == convert.RAW_EXTENSION:
        return convert.raw_extension_value(data, decode_envelope)
    if message == UNKNOWN:
        return decode_envelope(MAGIC + bytes(data))
    fields = fields_of(message)
    if fields is None:
        raise WireError(f"no protobuf schema for message {message}")
    out: dict[str, Any] = {}
    for number, wire_type, value in iter_fields(data):
        field = fields.get(number)
        if field is not None:
            _put(out, field, wire_type, value)
    if message in table().lists:
        return out.get("items", [])
    return out


def _put(out: dict[str, Any], field: Field, wire_type: int, value: int | memoryview) -> None:
    if field.is_map:
        key, item = _map_entry(field, _delimited(field, wire_type, value))
        out.setdefault(field.json, {})[key] = item
    elif field.repeated:
        out.setdefault(field.json, []).extend(_repeated_values(field, wire_type, value))
    elif field.scalar:
        _put_scalar(out, field, _scalar(field.type, wire_type, value, field.json))
    else:
        _put_message(out, field, decode_message(_delimited(field, wire_type, value), field.type))


def _put_scalar(out: dict[str, Any], field: Field, value: Any) -> None:
    if field.omitempty and not field.pointer and value == _ZERO[field.type]:
        out.pop(field.json, None)
    else:
        out[field.json] = value


def _put_message(out: dict[str, Any], field: Field, value: Any) -> None:
    if field.inline and isinstance(value, dict):
        out.update(value)
    elif _absent_in_json(field, value):
        out.pop(field.json, None)
    else:
        out[field.json] = value


def _absent_in_json(field: Field, value: Any) -> bool:
    """Go writes ``null`` for these (zero time, empty raw) or skips them (``omitzero`` empties, empty lists)."""
    if value is convert.DROP:
        return True
    if field.omitzero and value in ({}, []):
        return True
    return field.omitempty and value == [] and field.type in table().lists


def _repeated_values(field: Field, wire_type: int, value: int | memoryview) -> list[Any]:
    if not field.scalar:
        item = decode_message(_delimited(field, wire_type, value), field.type)
        return [None if item is convert.DROP else item]
    if wire_type == LENGTH_DELIMITED and field.type in _VARINT_TYPES:
        assert isinstance(value, memoryview)
        return [_scalar(field.type, VARINT, number, field.json) for number in unpack_varints(value)]
    if wire_type == LENGTH_DELIMITED and field.type in _FIXED_SIZE:
        assert isinstance(value, memoryview)
        size = _FIXED_SIZE[field.type]
        wire = FIXED64 if size == 8 else FIXED32
        return [_scalar(field.type, wire, number, field.json) for number in unpack_fixed(value, size)]
    return [_scalar(field.type, wire_type, value, field.json)]


def _map_entry(field: Field, data: memoryview) -> tuple[Any, Any]:
    """A map entry is a message ``{1: key, 2: value}``; a missing part means its zero value."""
    key: Any = _ZERO.get(field.key or "string", "")
    raw_value: memoryview | int | None = None
    value_wire = LENGTH_DELIMITED
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            key = _scalar(field.key or "string", wire_type, value, field.json)
        elif number == 2:
            raw_value, value_wire = value, wire_type
    if field.scalar:
        item = (
            _ZERO[field.type] if raw_value is None else _scalar(field.type, value_wire, raw_value, field.json)
        )
    else:
        payload = memoryview(b"") if raw_value is None else _delimited(field, value_wire, raw_value)
        item = decode_message(payload, field.type)
        item = None if item is convert.DROP else item
    return (key if isinstance(key, str) else str(key)), item


def _scalar(type_name: str, wire_type: int, value: int | memoryview, name: str) -> Any:
    if type_name in ("string", "bytes"):
        if not isinstance(value, memoryview) or wire_type != LENGTH_DELIMITED:
            raise WireError(f"field {name!r}: expected a length-delimited {type_name}")
        return _text(value) if type_name == "string" else base64.b64encode(value).decode("ascii")
    if not isinstance(value, int):
        raise WireError(f"field {name!r}: expected a {type_name}, got a length-delimited value")
    if type_name in _VARINT_TYPES:
        if wire_type != VARINT:
            raise WireError(f"field {name!r}: expected a varint {type_name}")
        return _varint_scalar(type_name, value)
    if type_name == "double" and wire_type == FIXED64:
        return as_double(value)
    if type_name == "float" and wire_type == FIXED32:
        return as_float(value)
    raise WireError(f"field {name!r}: wire type {wire_type} does not fit {type_name}")


def _varint_scalar(type_name: str, value: int) -> Any:
    if type_name == "bool":
        return value != 0
    if type_name == "int32":
        return signed(value, 32)
    if type_name == "int64":
        return signed(value, 64)
    if type_name == "uint32":
        return value & 0xFFFFFFFF
    return value


def _delimited(field: Field, wire_type: int, value: int | memoryview) -> memoryview:
    if wire_type != LENGTH_DELIMITED or not isinstance(value, memoryview):
        raise WireError(f"field {field.json!r}: expected a length-delimited {field.type}")
    return value


def _text(value: memoryview) -> str:
    # Go's JSON encoder replaces invalid UTF-8 with U+FFFD; do the same rather than failing the request.
    return bytes(value).decode("utf-8", errors="replace")
