"""LoopbackNetwork (the ``process`` runtime's per-Pod 127.x addresses): allocation, reuse rules, recovery, and
two servers on one port at two Pod addresses. Needs no root; traffic stays on 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import urllib.request
from pathlib import Path

import pytest

from nanokube.kubelet.network import LoopbackNetwork, NetworkError, loopback_cidr_for

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_cidr_mapping() -> None:
    assert loopback_cidr_for("10.42.3.0/24") == "127.42.3.0/24"
    assert loopback_cidr_for("10.42.0.0/16") == "127.42.0.0/16"
    assert loopback_cidr_for("") == "127.42.0.0/24"
    assert loopback_cidr_for("fd00::/64") == "127.42.0.0/24"
    with pytest.raises(NetworkError):
        LoopbackNetwork("10.42.0.0/24", "/nonexistent")
    with pytest.raises(NetworkError):
        LoopbackNetwork("127.9.9.0/31", "/nonexistent")


async def test_unique_addresses_and_replacement_gets_a_new_one(tmp_path: Path) -> None:
    net = LoopbackNetwork("127.42.5.0/24", str(tmp_path))
    await net.start()
    infos = await asyncio.gather(*(net.setup(f"uid-{i}", "default", f"p{i}") for i in range(5)))
    ips = [i.ip for i in infos]
    assert len(set(ips)) == 5
    for info in infos:
        address = ipaddress.ip_address(info.ip)
        assert address in ipaddress.ip_network("127.42.5.0/24")
        assert info.ip not in ("127.42.5.0", "127.42.5.1", "127.42.5.255")
        assert info.netns_path == "" and info.gateway == ""
    assert await net.setup("uid-0", "default", "p0") == infos[0]
    await net.teardown("uid-0")
    await net.teardown("uid-0")
    with pytest.raises(NetworkError):
        await net.check("uid-0")
    replacement = await net.setup("uid-new", "default", "p0")
    assert replacement.ip not in ips


async def test_small_range_wraps_and_exhausts(tmp_path: Path) -> None:
    net = LoopbackNetwork("127.42.6.0/30", str(tmp_path))  # one usable address: .2
    await net.start()
    only = await net.setup("a", "default", "a")
    assert only.ip == "127.42.6.2"
    with pytest.raises(NetworkError, match="no IP addresses"):
        await net.setup("b", "default", "b")
    await net.teardown("a")
    assert (await net.setup("b", "default", "b")).ip == "127.42.6.2"


async def test_recover_keeps_addresses_and_the_cursor(tmp_path: Path) -> None:
    first = LoopbackNetwork("127.42.7.0/24", str(tmp_path))
    await first.start()
    a = await first.setup("a", "ns", "a")
    b = await first.setup("b", "ns", "b")
    await first.teardown("b")
    second = LoopbackNetwork("127.42.7.0/24", str(tmp_path))
    recovered = await second.recover()
    assert recovered == [a] and second.get("a") == a
    await second.check("a")
    c = await second.setup("c", "ns", "c")
    assert c.ip not in (a.ip, b.ip)  # the cursor survived the restart


async def test_two_pods_serve_the_same_port(tmp_path: Path) -> None:
    net = LoopbackNetwork("127.42.8.0/24", str(tmp_path))
    await net.start()
    a = await net.setup("a", "ns", "a")
    b = await net.setup("b", "ns", "b")
    with socket.socket() as probe:  # a port free on the pods' addresses
        probe.bind((a.ip, 0))
        port = probe.getsockname()[1]

    async def answer(body: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    def get(ip: str) -> bytes:
        return bytes(NO_PROXY.open(f"http://{ip}:{port}/", timeout=10).read())

    servers = [await asyncio.start_server(functools.partial(answer, info.ip.encode()), info.ip, port)
               for info in (a, b)]
    try:
        for info in (a, b):
            assert await asyncio.to_thread(get, info.ip) == info.ip.encode()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
