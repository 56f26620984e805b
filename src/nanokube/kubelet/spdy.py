"""SPDY/3.1 framing: the byte format kubectl's port-forward speaks, parsed and written, with no I/O.

kubectl 1.37 forwards ports over SPDY/3.1 carried inside WebSocket binary messages (subprotocol
``SPDY/3.1+portforward.k8s.io``); no maintained Python SPDY library exists, so this module implements the
part of the protocol that Go's ``moby/spdystream`` (kubectl's side) uses:

* frames: DATA and the control frames SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS,
  WINDOW_UPDATE (8-byte headers, big-endian, 24-bit lengths, version 3);
* header blocks: ``(count, (name, value)...)`` with 32-bit lengths, names lowercase (Go rejects others),
  several values joined by NUL, compressed by one zlib stream per direction for the whole session, primed
  with the SPDY/3 dictionary and sync-flushed after every block.

``FrameParser`` turns received bytes (in any slicing) into frame objects; ``FrameWriter`` encodes frames to
send. Each owns its direction's zlib state, so one of each serves one session, and frames must go out in the
order they were encoded. Flow control (WINDOW_UPDATE) is parsed but not enforced: spdystream ignores it too.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
MAX_DATA = 0xFFFFFF
# RST_STREAM status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
    "set-cookie", "keep-alive", "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1).
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()

Headers = dict[str, list[str]]


class SpdyError(Exception):
    """The peer sent bytes that are not SPDY/3.1; the session cannot continue."""


# -- frames -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_id: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class UnknownControl:
    type: int
    flags: int
    payload: bytes


Frame = (DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate
         | UnknownControl)


def header(headers: Headers, name: str) -> str:
    """The first value of header ``name`` (any case), or ""."""
    values = headers.get(name.lower()) or []
    return values[0] if values else ""


# -- header blocks ----------------------------------------------------------------------------------------

def encode_block(headers: Headers | dict[str, str]) -> bytes:
    """An uncompressed name/value block; names are lowercased, several values joined by NUL."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name = name.lower().encode()
        raw_value = (value if isinstance(value, str) else "\0".join(value)).encode()
        out += [struct.pack(">I", len(raw_name)), raw_name, struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(out)


def decode_block(block: bytes) -> Headers:
    at = 0

    def string() -> str:
        nonlocal at
        (size,) = struct.unpack_from(">I", block, at)
        if at + 4 + size > len(block):
            raise SpdyError("malformed header block: a length runs past its end")
        text = block[at + 4:at + 4 + size].decode()
        at += 4 + size
        return text

    try:
        (count,), at = struct.unpack_from(">I", block), 4
        headers: Headers = {}
        for _ in range(count):
            name = string().lower()
            headers.setdefault(name, []).extend(string().split("\0"))
    except (struct.error, UnicodeDecodeError) as err:
        raise SpdyError(f"malformed header block: {err}") from err
    return headers


# -- reading ----------------------------------------------------------------------------------------------

class FrameParser:
    """Received bytes in, frames out; keeps the inbound header decompression state of one session."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._frame(head, payload))
        return frames

    def _headers(self, block: bytes) -> Headers:
        try:
            return decode_block(self._inflate.decompress(block))
        except zlib.error as err:
            raise SpdyError(f"cannot decompress a header block: {err}") from err

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            stream_id = int.from_bytes(head[:4], "big") & 0x7FFFFFFF
            return DataFrame(stream_id, payload, bool(flags & FLAG_FIN))
        version, kind = struct.unpack(">HH", head[:4])
        if version & 0x7FFF != VERSION:
            raise SpdyError(f"unsupported SPDY version {version & 0x7FFF}")
        fin = bool(flags & FLAG_FIN)
        try:
            return self._control(kind, flags, fin, payload)
        except struct.error as err:
            raise SpdyError(f"short control frame of type {kind}") from err

    def _control(self, kind: int, flags: int, fin: bool, payload: bytes) -> Frame:
        if kind == SYN_STREAM:
            stream_id, associated, priority = struct.unpack_from(">IIB", payload)
            return SynStream(stream_id & 0x7FFFFFFF, self._headers(payload[10:]), associated & 0x7FFFFFFF,
                             priority >> 5, fin, bool(flags & FLAG_UNIDIRECTIONAL))
        if kind in (SYN_REPLY, HEADERS):
            (stream_id,) = struct.unpack_from(">I", payload)
            cls = SynReply if kind == SYN_REPLY else HeadersFrame
            return cls(stream_id & 0x7FFFFFFF, self._headers(payload[4:]), fin)
        if kind == RST_STREAM:
            stream_id, status = struct.unpack_from(">II", payload)
            return RstStream(stream_id & 0x7FFFFFFF, status)
        if kind == SETTINGS:
            (count,) = struct.unpack_from(">I", payload)
            entries = []
            for i in range(count):
                flag_id, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                entries.append((flag_id >> 24, flag_id & 0xFFFFFF, value))
            return Settings(entries, bool(flags & 0x01))
        if kind == PING:
            return Ping(struct.unpack_from(">I", payload)[0])
        if kind == GOAWAY:
            last, status = struct.unpack_from(">II", payload) if len(payload) >= 8 else (
                struct.unpack_from(">I", payload)[0], 0)
            return GoAway(last & 0x7FFFFFFF, status)
        if kind == WINDOW_UPDATE:
            stream_id, delta = struct.unpack_from(">II", payload)
            return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        return UnknownControl(kind, flags, payload)


# -- writing ----------------------------------------------------------------------------------------------

def _control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


class FrameWriter:
    """Frames to bytes; keeps the outbound header compression state of one session."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def _compress(self, headers: Headers | dict[str, str]) -> bytes:
        return self._deflate.compress(encode_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, headers: Headers | dict[str, str], *, fin: bool = False,
                   associated_id: int = 0, priority: int = 0) -> bytes:
        payload = struct.pack(">IIBB", stream_id, associated_id, priority << 5, 0) + self._compress(headers)
        return _control(SYN_STREAM, FLAG_FIN if fin else 0, payload)

    def syn_reply(self, stream_id: int, headers: Headers | dict[str, str] | None = None, *,
                  fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id) + self._compress(headers or {})
        return _control(SYN_REPLY, FLAG_FIN if fin else 0, payload)

    def headers(self, stream_id: int, headers: Headers | dict[str, str], *, fin: bool = False) -> bytes:
        return _control(HEADERS, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + self._compress(headers))

    @staticmethod
    def data(stream_id: int, data: bytes = b"", *, fin: bool = False) -> bytes:
        """One DATA frame; callers split data longer than ``MAX_DATA``."""
        if len(data) > MAX_DATA:
            raise ValueError(f"a SPDY data frame carries at most {MAX_DATA} bytes")
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data

    @staticmethod
    def rst_stream(stream_id: int, status: int) -> bytes:
        return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    @staticmethod
    def settings(entries: list[tuple[int, int, int]]) -> bytes:
        body = b"".join(struct.pack(">II", (flags << 24) | ident, value) for flags, ident, value in entries)
        return _control(SETTINGS, 0, struct.pack(">I", len(entries)) + body)

    @staticmethod
    def ping(ping_id: int) -> bytes:
        return _control(PING, 0, struct.pack(">I", ping_id))

    @staticmethod
    def goaway(last_good_stream_id: int, status: int = 0) -> bytes:
        return _control(GOAWAY, 0, struct.pack(">II", last_good_stream_id, status))

    @staticmethod
    def window_update(stream_id: int, delta: int) -> bytes:
        return _control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
