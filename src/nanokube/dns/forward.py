"""Names outside the cluster: forwarded to upstream resolvers, answers cached for their TTL (capped).

Upstreams come from settings or the node's resolv.conf (the server's own addresses skipped, so it never asks
itself). Each query goes over UDP from a fresh socket (a random source port), to each upstream in turn until
one answers; a truncated answer is asked again over TCP. Identical questions in flight share one upstream
query. Cached answers are served with the client's id and their TTLs aged in place, never re-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import struct
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from . import wire
from .wire import Edns, Message, Question

log = logging.getLogger(__name__)
Upstream = tuple[str, int]


def parse_upstream(text: str) -> Upstream:
    """``"1.2.3.4"``, ``"1.2.3.4:5353"``, ``"[::1]:53"`` or ``"::1"`` as (address, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


def resolv_conf_upstreams(path: str, skip: Iterable[str] = ()) -> list[Upstream]:
    """The ``nameserver`` lines of a resolv.conf, minus addresses in ``skip`` (the server itself)."""
    skipped = {str(ipaddress.ip_address(a)) for a in skip if a}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as err:
        log.warning("cannot read %s (%s): names outside the cluster will not resolve", path, err)
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            address = fields[1].split("%")[0]
            try:
                if str(ipaddress.ip_address(address)) in skipped:
                    continue
            except ValueError:
                continue
            out.append((address, 53))
    return out


@dataclass
class _Cached:
    data: bytes
    stored: float
    expires: float
    ttls: list[tuple[int, int]]


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self, qid: int) -> None:
        self.qid = qid
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) >= 2 and struct.unpack_from("!H", data)[0] == self.qid and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class Forwarder:
    def __init__(self, upstreams: list[Upstream], *, timeout: float = 2.0, max_ttl: int = 30,
                 negative_ttl: int = 5, cache_size: int = 10000) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int, int, bool], _Cached] = OrderedDict()
        self._inflight: dict[tuple[str, int, int, bool], asyncio.Future[bytes | None]] = {}

    async def resolve(self, question: Question, qid: int, *, rd: bool = True, edns: bool = True) -> bytes | None:
        """The upstream answer to ``question`` as wire bytes carrying ``qid``; None when no upstream answered.

        ``edns``: whether the client sent EDNS; the upstream is asked the same way, so an answer never carries
        an OPT record to a client that did not ask with one (RFC 6891)."""
        key = (question.name.lower(), question.qtype, question.qclass, edns)
        cached = self._from_cache(key, qid)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._inflight[key] = pending
            try:
                data = await self._ask_all(question, rd, edns)
            except BaseException:
                pending.cancel()
                raise
            finally:
                del self._inflight[key]
            if data is not None:
                data = self._store(key, data)
            pending.set_result(data)
        else:
            try:
                data = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise
                data = None  # the query we waited on was cancelled with its own client
        return None if data is None else struct.pack("!H", qid) + data[2:]

    def _from_cache(self, key: tuple[str, int, int, bool], qid: int) -> bytes | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if now >= entry.expires:
            del self._cache[key]
            return None
        age = int(now - entry.stored)
        data = bytearray(entry.data)
        struct.pack_into("!H", data, 0, qid)
        for offset, ttl in entry.ttls:
            struct.pack_into("!I", data, offset, max(0, ttl - age))
        return bytes(data)

    def _store(self, key: tuple[str, int, int, bool], data: bytes) -> bytes:
        """Cache an upstream answer with its TTLs capped at ``max_ttl``; return it as capped."""
        try:
            msg = wire.decode(data)
            ttls = [(offset, min(ttl, self.max_ttl)) for offset, ttl in wire.ttl_fields(data)]
        except (wire.WireError, struct.error):
            return data
        capped = bytearray(data)
        for offset, ttl in ttls:
            struct.pack_into("!I", capped, offset, ttl)
        data = bytes(capped)
        if msg.rcode not in (wire.NOERROR, wire.NXDOMAIN) or msg.tc:
            return data
        if msg.answers:
            ttl = min(r.ttl for r in msg.answers)
        else:  # negative: the SOA's minimum (RFC 2308), else our default
            soas = [r for r in msg.authority if r.rtype == wire.SOA]
            ttl = min((min(r.ttl, getattr(r.data, "minimum", r.ttl)) for r in soas), default=self.negative_ttl)
        ttl = min(ttl, self.max_ttl)
        if ttl <= 0:
            return data
        now = time.monotonic()
        self._cache[key] = _Cached(data, now, now + ttl, ttls)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return data

    async def _ask_all(self, question: Question, rd: bool, edns: bool) -> bytes | None:
        for upstream in self.upstreams:
            qid = random.getrandbits(16)
            query = wire.encode(Message(id=qid, rd=rd, questions=[question], edns=Edns() if edns else None))
            try:
                data = await asyncio.wait_for(self._udp(upstream, query, qid), self.timeout)
                if _truncated(data):
                    data = await asyncio.wait_for(self._tcp(upstream, query), self.timeout)
                if not _answers(data, question):
                    continue
                return data
            except (TimeoutError, OSError, asyncio.IncompleteReadError, wire.WireError) as err:
                log.debug("upstream %s:%d failed for %s: %s", *upstream, question.name, err or type(err).__name__)
        return None

    async def _udp(self, upstream: Upstream, query: bytes, qid: int) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(lambda: _Datagram(qid), remote_addr=upstream)
        try:
            transport.sendto(query)
            return await protocol.answer
        finally:
            transport.close()

    async def _tcp(self, upstream: Upstream, query: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _truncated(data: bytes) -> bool:
    return len(data) >= 4 and bool(data[2] & 0x02)


def _answers(data: bytes, question: Question) -> bool:
    """A well-formed response to ``question`` (a lame SERVFAIL/REFUSED lets the next upstream try)."""
    msg = wire.decode(data)
    if not msg.qr or msg.rcode in (wire.SERVFAIL, wire.REFUSED):
        return False
    q = msg.question
    return q is not None and q.name.lower() == question.name.lower() and q.qtype == question.qtype
