"""The DNS wire format (RFC 1035, SRV per RFC 2782, EDNS0 per RFC 6891): just what a cluster DNS server needs.

``decode`` turns a datagram into a ``Message`` and ``encode`` turns one back, compressing names. Record data is
typed for the kinds this server answers itself (A, AAAA, NS, CNAME, PTR, SOA, TXT, SRV); anything else stays raw
bytes. Forwarded answers are never re-encoded (their record data may hold compression pointers into the original
message): ``ttl_fields`` finds their TTLs in place so a cache can age them without parsing record data.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
_HEADER = struct.Struct("!HHHHHH")


class WireError(ValueError):
    """A message that does not parse."""


@dataclass(frozen=True)
class Question:
    name: str  # dotted, no trailing dot; "" is the root
    qtype: int
    qclass: int = IN


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


RData = str | Srv | Soa | tuple[str, ...] | bytes


@dataclass(frozen=True)
class Record:
    """``data`` is an address for A/AAAA, a name for NS/CNAME/PTR, strings for TXT, Srv, Soa, else raw bytes."""
    name: str
    rtype: int
    ttl: int
    data: RData
    rclass: int = IN


@dataclass
class Edns:
    udp_size: int = 1232
    dnssec_ok: bool = False


@dataclass
class Message:
    id: int = 0
    qr: bool = False
    opcode: int = 0
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    rcode: int = NOERROR
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    edns: Edns | None = None

    @property
    def question(self) -> Question | None:
        return self.questions[0] if self.questions else None


# -- decoding ----------------------------------------------------------------------------------------------

def _name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset just after it (after the first pointer, if compressed)."""
    labels: list[str] = []
    end = -1
    hops = 0
    while True:
        if offset >= len(data):
            raise WireError("name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("truncated compression pointer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            hops += 1
            if hops > 64:
                raise WireError("compression loop")
            continue
        if length & 0xC0:
            raise WireError("unsupported label type")
        offset += 1
        if length == 0:
            break
        if offset + length > len(data):
            raise WireError("label runs past the end of the message")
        labels.append(data[offset:offset + length].decode("latin-1"))
        offset += length
    name = ".".join(labels)
    if len(name) > 253:
        raise WireError("name too long")
    return name, (end if end >= 0 else offset)


def _rdata(data: bytes, rtype: int, start: int, length: int) -> RData:
    raw = data[start:start + length]
    if rtype == A and length == 4:
        return str(ipaddress.IPv4Address(raw))
    if rtype == AAAA and length == 16:
        return str(ipaddress.IPv6Address(raw))
    if rtype in (NS, CNAME, PTR):
        return _name(data, start)[0]
    if rtype == SRV and length >= 7:
        priority, weight, port = struct.unpack_from("!HHH", data, start)
        return Srv(priority, weight, port, _name(data, start + 6)[0])
    if rtype == SOA:
        mname, at = _name(data, start)
        rname, at = _name(data, at)
        return Soa(mname, rname, *struct.unpack_from("!IIIII", data, at))
    if rtype == TXT:
        strings, at = [], 0
        while at < length:
            strings.append(raw[at + 1:at + 1 + raw[at]].decode("latin-1"))
            at += 1 + raw[at]
        return tuple(strings)
    return raw


def _records(data: bytes, offset: int, count: int) -> tuple[list[tuple[Record, int]], int]:
    """``count`` records from ``offset``, each with the offset of its TTL field."""
    out = []
    for _ in range(count):
        name, offset = _name(data, offset)
        if offset + 10 > len(data):
            raise WireError("truncated record header")
        rtype, rclass, ttl, length = struct.unpack_from("!HHIH", data, offset)
        ttl_at = offset + 4
        offset += 10
        if offset + length > len(data):
            raise WireError("record data runs past the end of the message")
        out.append((Record(name, rtype, ttl, _rdata(data, rtype, offset, length), rclass), ttl_at))
        offset += length
    return out, offset


def decode(data: bytes) -> Message:
    if len(data) < _HEADER.size:
        raise WireError("shorter than a DNS header")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    msg = Message(id=qid, qr=bool(flags & 0x8000), opcode=(flags >> 11) & 0xF, aa=bool(flags & 0x400),
                  tc=bool(flags & 0x200), rd=bool(flags & 0x100), ra=bool(flags & 0x80), rcode=flags & 0xF)
    offset = _HEADER.size
    for _ in range(qd):
        name, offset = _name(data, offset)
        if offset + 4 > len(data):
            raise WireError("truncated question")
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        msg.questions.append(Question(name, qtype, qclass))
    answers, offset = _records(data, offset, an)
    authority, offset = _records(data, offset, ns)
    additional, offset = _records(data, offset, ar)
    msg.answers = [r for r, _ in answers]
    msg.authority = [r for r, _ in authority]
    for record, _ in additional:
        if record.rtype == OPT:
            msg.edns = Edns(udp_size=max(512, record.rclass), dnssec_ok=bool(record.ttl & 0x8000))
            msg.rcode |= (record.ttl >> 24) << 4
        else:
            msg.additional.append(record)
    return msg


def ttl_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, ttl) of every record's TTL in a message, OPT excluded: for aging cached answers in place."""
    qd, an, ns, ar = struct.unpack_from("!HHHH", data, 4)
    offset = _HEADER.size
    for _ in range(qd):
        offset = _name(data, offset)[1] + 4
    records, _ = _records(data, offset, an + ns + ar)
    return [(at, r.ttl) for r, at in records if r.rtype != OPT]


# -- encoding ----------------------------------------------------------------------------------------------

class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.names: dict[str, int] = {}

    def name(self, name: str, compress: bool = True) -> None:
        labels = [label for label in name.split(".") if label]
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            if compress and suffix in self.names:
                self.buf += struct.pack("!H", 0xC000 | self.names[suffix])
                return
            if len(self.buf) < 0x4000:
                self.names.setdefault(suffix, len(self.buf))
            label = labels[i].encode("latin-1")
            if len(label) > 63:
                raise WireError(f"label too long in {name!r}")
            self.buf += bytes([len(label)]) + label
        self.buf += b"\0"

    def record(self, r: Record) -> None:
        self.name(r.name)
        self.buf += struct.pack("!HHI", r.rtype, r.rclass, r.ttl & 0xFFFFFFFF)
        length_at = len(self.buf)
        self.buf += b"\0\0"
        self.rdata(r)
        struct.pack_into("!H", self.buf, length_at, len(self.buf) - length_at - 2)

    def rdata(self, r: Record) -> None:
        data = r.data
        if r.rtype == A and isinstance(data, str):
            self.buf += ipaddress.IPv4Address(data).packed
        elif r.rtype == AAAA and isinstance(data, str):
            self.buf += ipaddress.IPv6Address(data).packed
        elif r.rtype in (NS, CNAME, PTR) and isinstance(data, str):
            self.name(data)
        elif isinstance(data, Srv):
            self.buf += struct.pack("!HHH", data.priority, data.weight, data.port)
            self.name(data.target, compress=False)  # RFC 2782: no compression in SRV targets
        elif isinstance(data, Soa):
            self.name(data.mname)
            self.name(data.rname)
            self.buf += struct.pack("!IIIII", data.serial, data.refresh, data.retry, data.expire, data.minimum)
        elif isinstance(data, tuple):
            for text in data:
                raw = text.encode("latin-1")[:255]
                self.buf += bytes([len(raw)]) + raw
        elif isinstance(data, bytes):
            self.buf += data
        else:
            raise WireError(f"cannot encode {type(data).__name__} data for record type {r.rtype}")


def encode(msg: Message) -> bytes:
    w = _Writer()
    flags = ((msg.qr << 15) | ((msg.opcode & 0xF) << 11) | (msg.aa << 10) | (msg.tc << 9) | (msg.rd << 8)
             | (msg.ra << 7) | (msg.rcode & 0xF))
    extra = 1 if msg.edns is not None else 0
    w.buf += _HEADER.pack(msg.id, flags, len(msg.questions), len(msg.answers), len(msg.authority),
                          len(msg.additional) + extra)
    for q in msg.questions:
        w.name(q.name)
        w.buf += struct.pack("!HH", q.qtype, q.qclass)
    for r in (*msg.answers, *msg.authority, *msg.additional):
        w.record(r)
    if msg.edns is not None:
        ttl = ((msg.rcode >> 4) << 24) | (0x8000 if msg.edns.dnssec_ok else 0)
        w.record(Record("", OPT, ttl, b"", rclass=msg.edns.udp_size))
    return bytes(w.buf)


def reply_to(query: Message) -> Message:
    """An empty response to ``query``: same id, question, RD and EDNS presence."""
    return Message(id=query.id, qr=True, opcode=query.opcode, rd=query.rd, ra=True,
                   questions=list(query.questions), edns=Edns() if query.edns is not None else None)


def truncated(msg: Message) -> bytes:
    """``msg`` cut to its header and question with TC set: the client retries over TCP."""
    short = Message(id=msg.id, qr=True, opcode=msg.opcode, aa=msg.aa, tc=True, rd=msg.rd, ra=msg.ra,
                    rcode=msg.rcode, questions=list(msg.questions), edns=msg.edns)
    return encode(short)


def header_error(data: bytes, rcode: int) -> bytes | None:
    """A bare error answer to a message whose header parsed but whose body did not (None: not even that)."""
    if len(data) < _HEADER.size:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    if flags & 0x8000:
        return None  # never answer a response
    return _HEADER.pack(qid, 0x8000 | (flags & 0x7900) | 0x80 | rcode, 0, 0, 0, 0)
