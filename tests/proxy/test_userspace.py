"""The userspace proxy in loopback mode: real sockets on 127.0.0.0/8 only, no privileges needed."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from nanokube.proxy.model import Endpoint
from nanokube.proxy.relay import Balancer
from nanokube.proxy.rules import NodeContext, Snapshot
from nanokube.proxy.userspace import UserspaceBackend, UserspaceSettings, desired, loopback_address

from .objects import endpoint, service, slice_

SETTINGS = UserspaceSettings(mode="loopback", node_port_host="127.0.0.1")
CTX = NodeContext("n1")


class Backends:
    """TCP servers on 127.0.0.1 answering with their name, and a UDP one echoing with its name."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}
        self.udp: asyncio.DatagramTransport | None = None
        self.udp_port = 0

    async def start(self, *names: str) -> None:
        for name in names:
            async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter, name: str = name) -> None:
                w.write(name.encode())
                await w.drain()
                w.close()
            server = await asyncio.start_server(answer, "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                self.transport.sendto(b"udp:" + data, addr)  # type: ignore[attr-defined]

        self.udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        self.udp_port = self.udp.get_extra_info("sockname")[1]

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.udp is not None:
            self.udp.close()


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    await b.start("a", "b")
    yield b
    b.close()


def tcp_slices(b: Backends, svc: str, *names: str) -> list[dict]:
    return [slice_(svc, [endpoint("127.0.0.1")], port=b.ports[n], name=f"{svc}-{n}") for n in names]


def snap(services: list[dict], slices: list[dict]) -> Snapshot:
    groups: dict[str, list[dict]] = {}
    for s in slices:
        groups.setdefault(f"default/{s['metadata']['labels']['kubernetes.io/service-name']}", []).append(s)
    return Snapshot({f"default/{s['metadata']['name']}": s for s in services}, groups, CTX)


async def fetch(host: str, port: int) -> str:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return "refused"
    data = await reader.read()
    writer.close()
    return data.decode()


def free_cluster_ip() -> tuple[str, str]:
    ip = f"10.43.{random.randint(1, 254)}.{random.randint(1, 254)}"
    return ip, loopback_address(ip, SETTINGS)


def test_loopback_address_keeps_the_offset() -> None:
    assert loopback_address("10.43.0.10", SETTINGS) == "127.243.0.10"
    assert loopback_address("10.43.2.1", SETTINGS) == "127.243.2.1"
    with pytest.raises(ValueError):
        loopback_address("10.44.0.1", SETTINGS)


def test_balancer_pins_clients_only_with_affinity() -> None:
    now = [0.0]
    eps = [Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80)]
    sticky = Balancer(eps, 10, random.Random(1), lambda: now[0])
    first = sticky.order("c")[0]
    sticky.used("c", first)
    assert all(sticky.order("c")[0] == first for _ in range(20))
    now[0] = 11.0  # the pin expired
    assert Counter(sticky.order("c")[0] for _ in range(50)).keys() == set(eps)
    plain = Balancer(eps, 0, random.Random(1), lambda: 0.0)
    plain.used("c", eps[0])
    assert Counter(plain.order("c")[0] for _ in range(50)).keys() == set(eps)


def test_desired_skips_ports_without_endpoints_and_sctp() -> None:
    svc = service("s", "10.43.0.10", ports=[{"port": 80, "protocol": "TCP"}, {"port": 9, "protocol": "SCTP"}])
    assert desired(snap([svc], []), SETTINGS) == {}
    wanted = desired(snap([svc], [slice_("s", [endpoint("127.0.0.1")]),
                                  slice_("s", [endpoint("127.0.0.1")], protocol="SCTP", name="s-2")]), SETTINGS)
    assert list(wanted) == [("tcp", "127.243.0.10", 80)]


async def test_tcp_balances_follows_changes_and_refuses_without_endpoints(backends: Backends) -> None:
    ip, host = free_cluster_ip()
    proxy = UserspaceBackend(SETTINGS)
    svc = service("web", ip, ports=[{"port": 18080, "protocol": "TCP"}])
    try:
        await proxy.sync(snap([svc], tcp_slices(backends, "web", "a", "b")))
        seen = Counter([await fetch(host, 18080) for _ in range(40)])
        assert set(seen) == {"a", "b"}, seen
        await proxy.sync(snap([svc], tcp_slices(backends, "web", "b")))
        assert {await fetch(host, 18080) for _ in range(10)} == {"b"}
        await proxy.sync(snap([svc], []))
        assert await fetch(host, 18080) == "refused"
    finally:
        await proxy.cleanup()


async def test_a_dead_endpoint_is_skipped(backends: Backends) -> None:
    ip, host = free_cluster_ip()
    proxy = UserspaceBackend(SETTINGS)
    svc = service("web", ip, ports=[{"port": 18080, "protocol": "TCP"}])
    dead = slice_("web", [endpoint("127.0.0.1")], port=1, name="web-dead")  # nothing listens on port 1
    try:
        await proxy.sync(snap([svc], [*tcp_slices(backends, "web", "a"), dead]))
        assert {await fetch(host, 18080) for _ in range(10)} == {"a"}
    finally:
        await proxy.cleanup()


async def test_affinity_and_node_port(backends: Backends) -> None:
    ip, host = free_cluster_ip()
    node_port = random.randint(30000, 32767)
    proxy = UserspaceBackend(SETTINGS)
    svc = service("web", ip, type="NodePort", sessionAffinity="ClientIP",
                  ports=[{"port": 18080, "protocol": "TCP", "nodePort": node_port}])
    try:
        await proxy.sync(snap([svc], tcp_slices(backends, "web", "a", "b")))
        assert len({await fetch(host, 18080) for _ in range(20)}) == 1
        assert await fetch("127.0.0.1", node_port) in ("a", "b")
    finally:
        await proxy.cleanup()
    assert await fetch(host, 18080) == "refused"


async def test_udp_is_relayed(backends: Backends) -> None:
    ip, host = free_cluster_ip()
    proxy = UserspaceBackend(SETTINGS)
    svc = service("dns", ip, ports=[{"port": 15353, "protocol": "UDP"}])
    try:
        await proxy.sync(snap([svc], [slice_("dns", [endpoint("127.0.0.1")], port=backends.udp_port,
                                             protocol="UDP")]))
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                answers.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, 15353))
        try:
            for word in (b"one", b"two"):
                transport.sendto(word)
                assert await asyncio.wait_for(answers.get(), 5) == b"udp:" + word
        finally:
            transport.close()
    finally:
        await proxy.cleanup()


def test_choose_backend_takes_userspace_when_asked() -> None:
    from nanokube.proxy.backends import choose_backend
    from nanokube.proxy.nftables import NftablesBackend, nft_available

    backend, what = choose_backend("nkt", userspace=True)
    assert isinstance(backend, UserspaceBackend) and what.startswith("userspace (asked for)")
    backend, what = choose_backend("nkt")
    assert isinstance(backend, NftablesBackend) == nft_available()[0], what


async def test_a_port_that_cannot_be_bound_does_not_stop_the_others(backends: Backends) -> None:
    ip, host = free_cluster_ip()
    other_ip, other_host = free_cluster_ip()
    blocker = await asyncio.start_server(lambda r, w: None, host, 18080)  # someone else holds the port
    proxy = UserspaceBackend(SETTINGS)
    services = [service("web", ip, ports=[{"port": 18080, "protocol": "TCP"}]),
                service("api", other_ip, ports=[{"port": 18080, "protocol": "TCP"}])]
    try:
        await proxy.sync(snap(services, [*tcp_slices(backends, "web", "a"), *tcp_slices(backends, "api", "b")]))
        assert await fetch(other_host, 18080) == "b"
        assert proxy.failed == {("tcp", host, 18080)}
    finally:
        blocker.close()
        await proxy.cleanup()
