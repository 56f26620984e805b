"""Shared by the DNS tests: a stub resolver that sends one query, and a fake upstream resolver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import cast

from nanokube.dns import wire
from nanokube.dns.wire import Edns, Message, Question, Record


async def ask(port: int, name: str, qtype: int = wire.A, *, tcp: bool = False, edns: bool = False,
              host: str = "127.0.0.1") -> Message:
    """Send one query to host:port and decode the reply (fails after 5 s)."""
    qid = random.getrandbits(16)
    query = wire.encode(Message(id=qid, rd=True, questions=[Question(name, qtype)], edns=Edns() if edns else None))
    if tcp:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))
            data = await reader.readexactly(length)
        finally:
            writer.close()
    else:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[bytes] = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                if not got.done():
                    got.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(host, port))
        try:
            transport.sendto(query)
            data = await asyncio.wait_for(got, 5)
        finally:
            transport.close()
    reply = wire.decode(data)
    assert reply.id == qid and reply.qr
    return reply


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A question with 192.0.2.7 (TTL 60), names starting ``nx`` with NXDOMAIN; counts questions."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        query = wire.decode(data)
        q = query.questions[0]
        self.asked.append(q.name)
        reply = wire.reply_to(query)
        if q.name.startswith("nx"):
            reply.rcode = wire.NXDOMAIN
            reply.authority = [Record("example", wire.SOA, 30, wire.Soa("ns.example", "h.example", 1, 2, 3, 4, 30))]
        elif q.qtype == wire.A:
            reply.answers = [Record(q.name, wire.A, 60, "192.0.2.7")]
        assert self.transport is not None
        self.transport.sendto(wire.encode(reply), addr)


async def fake_upstream() -> tuple[FakeUpstream, int, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    return proto, transport.get_extra_info("sockname")[1], transport
