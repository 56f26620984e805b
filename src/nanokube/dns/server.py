"""The cluster DNS server: UDP and TCP on one address, cluster names from informers, the rest forwarded.

``DNSServer(client, DNSSettings(...)).run(stop=...)`` watches Services, EndpointSlices and Namespaces (one
informer each; their handlers feed ``records.ClusterRecords``), binds ``listen``:``port`` for UDP and TCP,
answers SERVFAIL until the caches are listed, then sets ``ready``. With ``manage_service`` it also creates and
repairs the ``kube-dns`` Service and its endpoints (``service.ensure_dns_service``) whenever they change.

Sockets are bound with IP_FREEBIND, so the server may start before the address exists (the node's pod bridge
comes up later). Answers larger than the client's UDP limit (512 bytes, or its EDNS size) are sent truncated
so the client retries over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any, cast

from nanokube.api.errors import ApiError
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from . import wire
from .forward import Forwarder, parse_upstream, resolv_conf_upstreams
from .records import ClusterRecords
from .service import ensure_dns_service
from .wire import Message, Question

log = logging.getLogger(__name__)
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_FREEBIND = 78
MAX_CHAIN = 8


@dataclass
class DNSSettings:
    listen: str = "127.0.0.1"  # the address to serve on; pods must reach it (e.g. the pod bridge's gateway)
    port: int = 53  # 0: any free port (tests); the bound port is DNSServer.port
    domain: str = "cluster.local"
    ttl: int = 5
    upstreams: tuple[str, ...] | None = None  # "ip" or "ip:port"; None: the nameservers in resolv_conf
    resolv_conf: str = "/etc/resolv.conf"
    cluster_ip: str = "10.43.0.10"  # the kube-dns Service's ClusterIP (never forwarded to, never upstream)
    manage_service: bool = True  # create/repair kube-system/kube-dns and this server's endpoints
    advertise: str = ""  # the endpoint address published for this server; default: listen
    node_name: str = ""  # names this server's EndpointSlice (kube-dns-<node>) and its endpoint's nodeName
    cache_max_ttl: int = 30  # forwarded answers are cached at most this long
    forward_timeout: float = 2.0


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        task = asyncio.create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = await self.server.handle(data, udp=True)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DNSServer:
    def __init__(self, client: Client, settings: DNSSettings) -> None:
        self.client = client
        self.settings = settings
        self.records = ClusterRecords(settings.domain, settings.ttl, dns_ip=settings.cluster_ip)
        self.forwarder = Forwarder([], timeout=settings.forward_timeout, max_ttl=settings.cache_max_ttl,
                                   negative_ttl=settings.ttl)
        self.ready = asyncio.Event()
        self.port = settings.port
        self._synced = False
        self._service_dirty = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------
    async def run(self, *, stop: asyncio.Event) -> None:
        s = self.settings
        self.forwarder.upstreams = await asyncio.to_thread(self._upstreams)
        try:
            udp_sock, tcp_sock = _bind(s.listen, s.port)
        except OSError as err:
            raise OSError(err.errno, f"cluster DNS cannot listen on {s.listen}:{s.port}: {err.strerror}") from err
        self.port = udp_sock.getsockname()[1]
        informers = self._informers()
        tasks = [asyncio.create_task(i.run(stop=stop), name=f"dns-{i.resource.plural}") for i in informers]
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp_sock)
        tcp = await asyncio.start_server(self._tcp_client, sock=tcp_sock)
        log.info("cluster DNS on %s:%d (UDP, TCP) for %s; upstreams %s", s.listen, self.port, s.domain,
                 ", ".join(f"{h}:{p}" for h, p in self.forwarder.upstreams) or "none")
        try:
            if await _wait_all([i.synced for i in informers], stop):
                self._synced = True
                if s.manage_service:
                    tasks.append(asyncio.create_task(self._keep_service(stop), name="dns-service"))
                self.ready.set()
                await stop.wait()
        finally:
            udp.close()
            tcp.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await asyncio.wait_for(tcp.wait_closed(), 2)

    def _upstreams(self) -> list[tuple[str, int]]:
        s = self.settings
        if s.upstreams is not None:
            return [parse_upstream(u) for u in s.upstreams]
        own = [s.listen, s.advertise, s.cluster_ip]
        return [u for u in resolv_conf_upstreams(s.resolv_conf, own) if u != (s.listen, self.port)]

    def _informers(self) -> list[Informer]:
        reg = self.client.registry
        services, slices = reg.get("", "v1", "services"), reg.get("discovery.k8s.io", "v1", "endpointslices")
        namespaces = reg.get("", "v1", "namespaces")
        assert services is not None and slices is not None and namespaces is not None
        out = []
        for resource, handler in ((services, self.records.on_service), (slices, self.records.on_slice),
                                  (namespaces, self.records.on_namespace)):
            informer = Informer(self.client, resource)
            informer.add_handler(handler)
            informer.add_handler(self._watch_own)
            out.append(informer)
        return out

    def _watch_own(self, kind: str, obj: JSON, old: JSON | None) -> None:
        """Re-check the kube-dns objects when anything about them changes (someone deleted or edited them)."""
        meta = obj["metadata"]
        if meta.get("namespace") == "kube-system" and (
                meta["name"] == "kube-dns" or (meta.get("labels") or {}).get("kubernetes.io/service-name") == "kube-dns"):
            self._service_dirty.set()

    async def _keep_service(self, stop: asyncio.Event) -> None:
        s = self.settings
        address = s.advertise or s.listen
        if address in ("0.0.0.0", "::", ""):
            log.warning("cluster DNS listens on %s: set an advertise address to publish kube-dns endpoints", address)
            return
        delay = 0.5
        while not stop.is_set():
            self._service_dirty.clear()
            try:
                await ensure_dns_service(self.client, address=address, port=self.port, cluster_ip=s.cluster_ip,
                                         node_name=s.node_name)
                delay = 0.5
            except (ApiError, OSError) as err:
                log.warning("cannot create or repair kube-system/kube-dns (%s); retrying in %.0fs", err, delay)
                await _sleep_or(stop, delay)
                delay = min(delay * 2, 30.0)
                continue
            await _wait_all([self._service_dirty], stop)
            await _sleep_or(stop, 0.2)  # let a burst of our own writes settle before re-checking

    # -- queries ---------------------------------------------------------------------------------------
    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 30))
                reply = await self.handle(await asyncio.wait_for(reader.readexactly(length), 10), udp=False)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def handle(self, data: bytes, *, udp: bool = True) -> bytes | None:
        """The reply to one query message (None: nothing to send)."""
        try:
            query = wire.decode(data)
        except wire.WireError:
            return wire.header_error(data, wire.FORMERR)
        if query.qr:
            return None
        reply = wire.reply_to(query)
        if query.opcode != 0:
            reply.rcode = wire.NOTIMP
        elif len(query.questions) != 1:
            reply.rcode = wire.FORMERR
        elif not self._synced:
            reply.rcode = wire.SERVFAIL
        else:
            q = query.questions[0]
            if self.records.in_zone(q.name):
                await self._local(q, reply)
            elif (ptr := self.records.reverse(q.name, q.qtype)) is not None:
                reply.aa, reply.answers = True, ptr.records
            else:
                forwarded = await self.forwarder.resolve(q, query.id, rd=query.rd, edns=query.edns is not None)
                if forwarded is None:
                    reply.rcode = wire.SERVFAIL
                elif not udp or len(forwarded) <= _limit(query):
                    return forwarded
                else:
                    return wire.truncated(reply)
        encoded = wire.encode(reply)
        return wire.truncated(reply) if udp and len(encoded) > _limit(query) else encoded

    async def _local(self, q: Question, reply: Message) -> None:
        """Answer from the cluster's records, following CNAMEs through the zone and, once, upstream."""
        reply.aa = True
        answer = self.records.answer(q.name, q.qtype)
        reply.answers, reply.additional, reply.rcode = list(answer.records), answer.additional, answer.rcode
        for _ in range(MAX_CHAIN):
            last = reply.answers[-1] if reply.answers else None
            if last is None or last.rtype != wire.CNAME or q.qtype in (wire.CNAME, wire.ANY):
                break
            target = str(last.data)
            if self.records.in_zone(target):
                answer = self.records.answer(target, q.qtype)
                reply.answers += answer.records
                reply.rcode = answer.rcode
                continue
            if q.qtype in (wire.A, wire.AAAA):
                await self._chase(Question(target, q.qtype), reply)
            break
        last = reply.answers[-1] if reply.answers else None
        if last is None or reply.rcode == wire.NXDOMAIN or (last.rtype == wire.CNAME and q.qtype != wire.CNAME):
            reply.authority = [self.records.soa()]  # negative, or a chain that ends without the asked type

    async def _chase(self, q: Question, reply: Message) -> None:
        data = await self.forwarder.resolve(q, 0)
        if data is None:
            return
        with contextlib.suppress(wire.WireError):
            upstream = wire.decode(data)
            reply.answers += [r for r in upstream.answers if r.rtype in (wire.A, wire.AAAA, wire.CNAME)]
            reply.rcode = upstream.rcode


def _limit(query: Message) -> int:
    return min(max(query.edns.udp_size, 512), 4096) if query.edns is not None else 512


def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on host:port (port 0: one free port for both)."""
    for _ in range(20):
        udp = _socket(socket.SOCK_DGRAM, host, port)
        try:
            return udp, _socket(socket.SOCK_STREAM, host, udp.getsockname()[1])
        except OSError as err:
            udp.close()
            if port != 0 or err.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {host}")


def _socket(kind: int, host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # bind before the address exists (the pod bridge comes later)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def _wait_all(events: list[asyncio.Event], stop: asyncio.Event) -> bool:
    """Wait until every event is set (True) or ``stop`` is (False)."""
    waiting: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in events)))
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in (waiting, stopped):
            f.cancel()
        for f in (waiting, stopped):
            with contextlib.suppress(asyncio.CancelledError):
                await f
    return all(e.is_set() for e in events) and not stop.is_set()


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
