"""The DNS wire codec: round trips, compression, hostile input, TTL positions, error headers."""

from __future__ import annotations

import struct

import pytest

from nanokube.dns import wire
from nanokube.dns.wire import Edns, Message, Question, Record, Soa, Srv


def _full() -> Message:
    return Message(
        id=0x1234, qr=True, aa=True, rd=True, ra=True, rcode=wire.NXDOMAIN,
        questions=[Question("Web.default.svc.cluster.local", wire.SRV)],
        answers=[Record("web.default.svc.cluster.local", wire.A, 5, "10.43.0.20"),
                 Record("web.default.svc.cluster.local", wire.AAAA, 5, "fd00::1"),
                 Record("alias.default.svc.cluster.local", wire.CNAME, 5, "web.default.svc.cluster.local"),
                 Record("_http._tcp.web.default.svc.cluster.local", wire.SRV, 5,
                        Srv(0, 100, 80, "web.default.svc.cluster.local")),
                 Record("20.0.43.10.in-addr.arpa", wire.PTR, 5, "web.default.svc.cluster.local"),
                 Record("dns-version.cluster.local", wire.TXT, 5, ("1.1.0", "second")),
                 Record("x.example", 15, 300, b"\x00\x0a\x00")],
        authority=[Record("cluster.local", wire.SOA, 5,
                          Soa("ns.dns.cluster.local", "hostmaster.cluster.local", 7, 7200, 1800, 86400, 5)),
                   Record("cluster.local", wire.NS, 5, "ns.dns.cluster.local")],
        edns=Edns(udp_size=1232, dnssec_ok=True))


def test_round_trip_keeps_every_field() -> None:
    msg = _full()
    back = wire.decode(wire.encode(msg))
    assert back == msg


def test_names_are_compressed() -> None:
    msg = _full()
    data = wire.encode(msg)
    uncompressed = sum(len(r.name) + 2 for r in msg.answers)
    # The question spells it out; every later mention is a pointer except the SRV target (RFC 2782).
    assert data.count(b"\x07cluster\x05local") == 2
    assert len(data) < uncompressed + 200


def test_a_query_as_dig_sends_it() -> None:
    # id 0xabcd, RD, one question: example.com IN A
    data = bytes.fromhex("abcd01000001000000000000") + b"\x07example\x03com\x00" + struct.pack("!HH", 1, 1)
    msg = wire.decode(data)
    assert (msg.id, msg.rd, msg.qr, msg.questions) == (0xABCD, True, False, [Question("example.com", wire.A)])
    assert wire.encode(msg) == data


@pytest.mark.parametrize("data", [
    b"\x00\x01",  # shorter than a header
    bytes.fromhex("000101000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
    bytes.fromhex("000101000001000000000000") + b"\x05abc",  # label past the end
    bytes.fromhex("000101000000000100000000") + b"\x00\x00\x01\x00\x01\x00\x00",  # truncated record header
])
def test_hostile_input_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_ttl_fields_point_at_each_ttl() -> None:
    data = bytearray(wire.encode(_full()))
    fields = wire.ttl_fields(bytes(data))
    assert [ttl for _, ttl in fields] == [5, 5, 5, 5, 5, 5, 300, 5, 5]  # OPT is not a TTL
    for offset, _ in fields:
        struct.pack_into("!I", data, offset, 1)
    back = wire.decode(bytes(data))
    assert {r.ttl for r in back.answers + back.authority} == {1}


def test_header_error_and_truncation() -> None:
    query = bytes.fromhex("beef01000001000000000000") + b"\x03bad"
    reply = wire.header_error(query, wire.FORMERR)
    assert reply is not None
    msg = wire.decode(reply)
    assert (msg.id, msg.qr, msg.rd, msg.rcode, msg.questions) == (0xBEEF, True, True, wire.FORMERR, [])
    assert wire.header_error(reply, wire.FORMERR) is None  # never answer a response
    cut = wire.decode(wire.truncated(_full()))
    assert cut.tc and cut.answers == [] and cut.questions == _full().questions
