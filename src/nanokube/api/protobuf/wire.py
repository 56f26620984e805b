"""The protobuf wire format, read without a schema: varints, fixed-width numbers and length-delimited fields.

Kubernetes' messages are proto2 and use only four wire types: varint (0), 64-bit (1), length-delimited (2) and
32-bit (5); the deprecated groups (3, 4) never occur and are rejected. Everything here is a pure function over
``bytes``/``memoryview`` so the schema-driven decoder can slice sub-messages without copying. Malformed input
raises ``WireError``; the package's public face turns that into a 400 for the client.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

_MAX_VARINT_BYTES = 10
_UINT64 = 1 << 64


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the unsigned varint at ``pos``; returns ``(value, next position)``."""
    result = 0
    shift = 0
    end = len(data)
    for count in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if count == _MAX_VARINT_BYTES - 1 and byte > 1:
                raise WireError("varint overflows 64 bits")
            return result, pos
        shift += 7
    raise WireError("varint longer than 10 bytes")


def signed(value: int, bits: int) -> int:
    """Two's-complement view of an unsigned varint (negative int32 are sent sign-extended to 64 bits)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field number, wire type, value)`` for each field of one message, in wire order.

    Varints and fixed-width numbers come as unsigned ints; length-delimited fields as a memoryview slice.
    """
    view = memoryview(data)
    pos = 0
    end = len(view)
    while pos < end:
        key, pos = read_varint(view, pos)
        number = key >> 3
        wire_type = key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | memoryview
        if wire_type == VARINT:
            value, pos = read_varint(view, pos)
        elif wire_type == LENGTH_DELIMITED:
            length, pos = read_varint(view, pos)
            if pos + length > end:
                raise WireError(f"field {number}: length {length} runs past the end of the message")
            value = view[pos : pos + length]
            pos += length
        elif wire_type == FIXED64:
            value, pos = _fixed(view, pos, 8, number)
        elif wire_type == FIXED32:
            value, pos = _fixed(view, pos, 4, number)
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type}")
        yield number, wire_type, value


def _fixed(view: memoryview, pos: int, size: int, number: int) -> tuple[int, int]:
    if pos + size > len(view):
        raise WireError(f"field {number}: truncated fixed{size * 8}")
    return int.from_bytes(view[pos : pos + size], "little"), pos + size


def unpack_varints(data: bytes | memoryview) -> list[int]:
    """The values of a packed repeated varint field."""
    values: list[int] = []
    pos = 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        values.append(value)
    return values


def unpack_fixed(data: bytes | memoryview, size: int) -> list[int]:
    """The values of a packed repeated fixed32/fixed64 field, as unsigned ints."""
    if len(data) % size:
        raise WireError(f"packed fixed{size * 8} field has a ragged length {len(data)}")
    return [int.from_bytes(data[i : i + size], "little") for i in range(0, len(data), size)]


def as_double(value: int) -> float:
    return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])


def as_float(value: int) -> float:
    return float(struct.unpack("<f", value.to_bytes(4, "little"))[0])


def encode_varint(value: int) -> bytes:
    """Encode an unsigned (or negative, as 64-bit two's complement) varint; used by tests and fixtures."""
    if value < 0:
        value += _UINT64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | bytes | str) -> bytes:
    """One field on the wire: ints as varints, ``bytes``/``str`` as length-delimited; for tests and fixtures."""
    if isinstance(value, int):
        return encode_varint(number << 3 | VARINT) + encode_varint(value)
    payload = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | LENGTH_DELIMITED) + encode_varint(len(payload)) + payload
