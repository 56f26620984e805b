"""Forwarding: resolv.conf upstreams without the server itself, failover past a dead or lame upstream, a
truncated UDP answer asked again over TCP, identical questions in flight sharing one upstream query."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from pathlib import Path

from dns_testing import fake_upstream

from nanokube.dns import wire
from nanokube.dns.forward import Forwarder, parse_upstream, resolv_conf_upstreams
from nanokube.dns.wire import Question, Record


def test_resolv_conf_skips_the_server_itself(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver 10.42.0.1\nnameserver 127.0.0.53\n"
                    "nameserver fe80::1%eth0\nnameserver bogus\nnameserver 10.43.0.10\noptions ndots:1\n")
    assert resolv_conf_upstreams(str(conf), ["10.42.0.1", "10.43.0.10"]) == [("127.0.0.53", 53), ("fe80::1", 53)]
    assert resolv_conf_upstreams(str(tmp_path / "absent")) == []
    assert [parse_upstream(u) for u in ("1.2.3.4", "1.2.3.4:5353", "[::1]:54", "::1")] == [
        ("1.2.3.4", 53), ("1.2.3.4", 5353), ("::1", 54), ("::1", 53)]


class _Lame(asyncio.DatagramProtocol):
    """Answers REFUSED to everything."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = wire.reply_to(wire.decode(data))
        reply.rcode = wire.REFUSED
        self.transport.sendto(wire.encode(reply), addr)  # type: ignore[attr-defined]


async def test_failover_past_dead_and_lame_upstreams() -> None:
    loop = asyncio.get_running_loop()
    lame, _ = await loop.create_datagram_endpoint(_Lame, local_addr=("127.0.0.1", 0))
    dead, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    _, port, transport = await fake_upstream()
    try:
        upstreams = [("127.0.0.1", dead.get_extra_info("sockname")[1]),
                     ("127.0.0.1", lame.get_extra_info("sockname")[1]), ("127.0.0.1", port)]
        forwarder = Forwarder(upstreams, timeout=0.3)
        data = await forwarder.resolve(Question("example.net", wire.A), 77)
        assert data is not None
        msg = wire.decode(data)
        assert msg.id == 77 and [r.data for r in msg.answers] == ["192.0.2.7"]
        assert await Forwarder(upstreams[:2], timeout=0.3).resolve(Question("example.net", wire.A), 1) is None
    finally:
        for t in (lame, dead, transport):
            t.close()


async def test_truncated_udp_is_asked_again_over_tcp() -> None:
    loop = asyncio.get_running_loop()
    big = [Record("big.example", wire.A, 60, f"192.0.2.{i}") for i in range(1, 101)]

    class Truncating(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            self.transport.sendto(wire.truncated(wire.reply_to(wire.decode(data))), addr)  # type: ignore[attr-defined]

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        reply = wire.reply_to(wire.decode(await reader.readexactly(length)))
        reply.answers = big
        data = wire.encode(reply)
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(tcp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    udp = None
    with contextlib.suppress(OSError):
        udp, _ = await loop.create_datagram_endpoint(Truncating, local_addr=("127.0.0.1", port))
    try:
        assert udp is not None, "the test's UDP port was taken; run again"
        data = await Forwarder([("127.0.0.1", port)], timeout=2).resolve(Question("big.example", wire.A), 5)
        assert data is not None
        assert [r.data for r in wire.decode(data).answers] == [r.data for r in big]
    finally:
        if udp is not None:
            udp.close()
        server.close()


async def test_identical_questions_in_flight_share_one_query() -> None:
    upstream, port, transport = await fake_upstream()
    try:
        forwarder = Forwarder([("127.0.0.1", port)])
        answers = await asyncio.gather(*(forwarder.resolve(Question("same.example", wire.A), i) for i in range(5)))
        assert [wire.decode(a).id for a in answers if a] == [0, 1, 2, 3, 4]
        assert upstream.asked == ["same.example"]
    finally:
        transport.close()
