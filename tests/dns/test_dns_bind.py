"""Binding: an address that does not exist yet is accepted (the pod bridge comes later); a taken port is a
clear error."""

from __future__ import annotations

import asyncio
import socket

import pytest

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.dns.server import DNSServer, DNSSettings, _bind


def test_binds_an_address_before_it_exists() -> None:
    udp, tcp = _bind("198.51.100.77", 0)  # TEST-NET-2: on no interface of this machine; nothing is sent
    try:
        assert udp.getsockname()[0] == "198.51.100.77" and udp.getsockname()[1] == tcp.getsockname()[1]
    finally:
        udp.close()
        tcp.close()


async def test_a_taken_port_says_where() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        async with InProcessCluster() as cluster:
            server = DNSServer(cluster.client, DNSSettings(listen="127.0.0.1", port=port, upstreams=()))
            with pytest.raises(OSError, match=f"cluster DNS cannot listen on 127.0.0.1:{port}"):
                await asyncio.wait_for(server.run(stop=asyncio.Event()), 5)
    finally:
        taken.close()
