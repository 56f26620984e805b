"""Relays for the userspace proxy: picking an endpoint, and moving TCP streams and UDP datagrams to it.

``Balancer`` chooses an endpoint at random, pinning a client address to its endpoint for the affinity
timeout when one is set; ``update`` swaps the endpoint list in place (pins to endpoints that left are
dropped), so a listener survives endpoint changes. ``TcpRelay`` accepts, connects to a chosen endpoint
(trying the others when one refuses) and copies both directions until either side closes. ``UdpRelay``
keeps one connected upstream socket per client address and sends the answers back from the service
address; idle ones are closed after ``idle`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from .model import Endpoint

log = logging.getLogger(__name__)


class Balancer:
    def __init__(self, endpoints: list[Endpoint], affinity: int, rng: random.Random,
                 clock: Callable[[], float]) -> None:
        self.rng = rng
        self.clock = clock
        self.endpoints: list[Endpoint] = []
        self.affinity = 0
        self.pins: dict[str, tuple[Endpoint, float]] = {}  # client ip -> (endpoint, last used)
        self.update(endpoints, affinity)

    def update(self, endpoints: list[Endpoint], affinity: int) -> None:
        self.endpoints = list(endpoints)
        self.affinity = affinity
        self.pins = {c: p for c, p in self.pins.items() if p[0] in self.endpoints and affinity}

    def order(self, client: str) -> list[Endpoint]:
        """Endpoints to try for ``client``, best first."""
        choices = list(self.endpoints)
        self.rng.shuffle(choices)
        pinned = self.pins.get(client)
        if pinned is not None and self.clock() - pinned[1] < self.affinity and pinned[0] in choices:
            choices.remove(pinned[0])
            choices.insert(0, pinned[0])
        return choices

    def used(self, client: str, endpoint: Endpoint) -> None:
        if self.affinity:
            self.pins[client] = (endpoint, self.clock())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class TcpRelay:
    def __init__(self, host: str, port: int, balancer: Balancer, connect_timeout: float, idle: float) -> None:
        self.host, self.port, self.balancer, self.connect_timeout = host, port, balancer, connect_timeout
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accepted, self.host, self.port, reuse_address=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        client = str((writer.get_extra_info("peername") or ("",))[0])
        try:
            for endpoint in self.balancer.order(client):
                try:
                    up_reader, up_writer = await asyncio.wait_for(
                        asyncio.open_connection(endpoint.ip, endpoint.port), self.connect_timeout)
                except (OSError, TimeoutError):
                    continue
                self.balancer.used(client, endpoint)
                try:
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                finally:
                    up_writer.close()
                return
        finally:
            writer.close()
            self.tasks.discard(task)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, client: tuple[str, int]) -> None:
        self.relay, self.client = relay, client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = asyncio.get_running_loop().time()
        if self.relay.transport is not None:
            self.relay.transport.sendto(data, self.client)


class UdpRelay(asyncio.DatagramProtocol):
    def __init__(self, host: str, port: int, balancer: Balancer, connect_timeout: float, idle: float) -> None:
        self.host, self.port, self.balancer, self.idle = host, port, balancer, idle
        self.transport: asyncio.DatagramTransport | None = None
        self.upstreams: dict[tuple[str, int], _Upstream] = {}
        self.pending: dict[tuple[str, int], list[bytes]] = {}
        self.sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port), reuse_port=False)
        self.sweeper = asyncio.create_task(self._sweep())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        upstream = self.upstreams.get(addr)
        if upstream is not None and upstream.transport is not None:
            upstream.last = asyncio.get_running_loop().time()
            upstream.transport.sendto(data)
            return
        if addr in self.pending:
            self.pending[addr].append(data)
            return
        self.pending[addr] = [data]
        asyncio.get_running_loop().create_task(self._open(addr))

    async def _open(self, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        for endpoint in self.balancer.order(client[0]):
            try:
                _, upstream = await loop.create_datagram_endpoint(lambda: _Upstream(self, client),
                                                                  remote_addr=(endpoint.ip, endpoint.port))
            except OSError:
                continue
            self.balancer.used(client[0], endpoint)
            upstream.last = loop.time()
            self.upstreams[client] = upstream
            for data in self.pending.pop(client, []):
                assert upstream.transport is not None
                upstream.transport.sendto(data)
            return
        self.pending.pop(client, None)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle, 5.0))
            now = asyncio.get_running_loop().time()
            for client, upstream in list(self.upstreams.items()):
                if now - upstream.last > self.idle and upstream.transport is not None:
                    upstream.transport.close()
                    del self.upstreams[client]

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        for upstream in self.upstreams.values():
            if upstream.transport is not None:
                upstream.transport.close()
        self.upstreams.clear()
        if self.transport is not None:
            self.transport.close()
