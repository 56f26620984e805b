"""The userspace proxy: asyncio listeners that relay each Service port's connections to an endpoint.

For machines without nftables and for the ``process`` runtime, whose Pods live on 127.x addresses and cannot
have cluster IPs routed to them without root. ``UserspaceBackend`` takes the same ``Snapshot`` as the nft
backend and keeps one listener per (protocol, address, port):

- mode ``vip`` (root): each cluster IP is added as a /32 to ``device`` (default ``lo``; the kernel has no
  dummy interfaces here) and the proxy listens on ``clusterIP:port``. The host reaches it as a local address,
  Pods through their gateway. Addresses it added are removed when the Service goes and on ``cleanup``.
- mode ``loopback`` (no root): the cluster IP's offset in ``service_cidr`` is mapped to the same offset in
  ``loopback_cidr`` (10.43.0.10 -> 127.243.0.10) and the proxy listens there; clients must use that address
  (``loopback_address`` tells them). Nothing is routed, nothing needs privileges.
- node ports listen on ``node_port_host`` (all addresses by default) in both modes.

TCP is relayed byte for byte (the endpoint sees the proxy as the client); UDP keeps one upstream socket per
client address, expired after ``udp_idle`` seconds. An endpoint is picked at random over the usable ones
(ready, else serving-and-terminating; internal/externalTrafficPolicy Local narrow them to this node), a
refused connection is retried on the others, ``sessionAffinity: ClientIP`` pins a client for its timeout.
A port without endpoints gets no listener, so clients are refused as with the nft backend's reject. A port
that cannot be bound (below 1024 without root, or taken) is logged once and tried again at every sync; the
other Services are served. SCTP, external IPs and client-address preservation are not supported.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from dataclasses import dataclass

from .model import Endpoint, ServicePort, categorize, endpoints_for, service_ports
from .relay import Balancer, TcpRelay, UdpRelay
from .rules import Snapshot

log = logging.getLogger(__name__)


@dataclass
class UserspaceSettings:
    mode: str = "loopback"  # "vip" (root: cluster IPs on `device`) or "loopback" (cluster IPs mapped into 127/8)
    device: str = "lo"
    service_cidr: str = "10.43.0.0/16"
    loopback_cidr: str = "127.243.0.0/16"
    node_port_host: str = "0.0.0.0"
    connect_timeout: float = 2.0
    udp_idle: float = 30.0


def loopback_address(cluster_ip: str, settings: UserspaceSettings) -> str:
    """Where ``loopback`` mode serves ``cluster_ip``: the same offset in ``loopback_cidr``."""
    offset = int(ipaddress.ip_address(cluster_ip)) - int(ipaddress.ip_network(settings.service_cidr).network_address)
    base = ipaddress.ip_network(settings.loopback_cidr)
    if not 0 <= offset < base.num_addresses:
        raise ValueError(f"{cluster_ip} is outside the service range {settings.service_cidr}")
    return str(base.network_address + offset)


Key = tuple[str, str, int]  # protocol, listen address, port


@dataclass
class Wanted:
    port: ServicePort
    endpoints: list[Endpoint]


def desired(snap: Snapshot, settings: UserspaceSettings) -> dict[Key, Wanted]:
    """The listeners the snapshot needs and the endpoints each balances over."""
    out: dict[Key, Wanted] = {}
    for key, svc in snap.services.items():
        for port in service_ports(svc):
            if port.protocol not in ("tcp", "udp"):
                continue
            endpoints = endpoints_for(port, snap.slices.get(key, []))
            local = categorize([e for e in endpoints if e.node == snap.ctx.node_name])
            usable = categorize(endpoints)
            internal = local if port.internal_local else usable
            if internal:
                for ip in port.cluster_ips:
                    host = ip if settings.mode == "vip" else loopback_address(ip, settings)
                    out[(port.protocol, host, port.port)] = Wanted(port, internal)
            external = local if port.external_local else usable
            if external and port.node_port:
                out[(port.protocol, settings.node_port_host, port.node_port)] = Wanted(port, external)
    return out


class UserspaceBackend:
    def __init__(self, settings: UserspaceSettings | None = None) -> None:
        self.settings = settings or UserspaceSettings()
        self.listeners: dict[Key, TcpRelay | UdpRelay] = {}
        self.addresses: set[str] = set()  # VIPs this backend added to the device
        self.failed: set[Key] = set()  # listeners that could not bind (a port below 1024 without root, say)

    async def sync(self, snap: Snapshot) -> None:
        wanted = desired(snap, self.settings)
        for key in list(self.listeners.keys() - wanted.keys()):
            await self.listeners.pop(key).close()
        if self.settings.mode == "vip":
            await self._addresses({host for _, host, _ in wanted if host != self.settings.node_port_host})
        for key, want in wanted.items():
            listener = self.listeners.get(key)
            if listener is None:
                balancer = Balancer(want.endpoints, want.port.affinity_timeout, random.Random(), time.monotonic)
                relay_cls = TcpRelay if key[0] == "tcp" else UdpRelay
                listener = relay_cls(key[1], key[2], balancer, self.settings.connect_timeout, self.settings.udp_idle)
                try:
                    await listener.start()
                except OSError as err:
                    if key not in self.failed:  # say it once; the next sync tries again
                        log.warning("proxy: cannot serve %s on %s %s:%d: %s", want.port.id, *key, err.strerror)
                    self.failed.add(key)
                    continue
                self.failed.discard(key)
                self.listeners[key] = listener
            else:
                listener.balancer.update(want.endpoints, want.port.affinity_timeout)

    async def _addresses(self, wanted: set[str]) -> None:
        for ip in sorted(wanted - self.addresses):
            await _ip("addr", "replace", f"{ip}/32", "dev", self.settings.device)
            self.addresses.add(ip)
        for ip in sorted(self.addresses - wanted):
            await _ip("addr", "del", f"{ip}/32", "dev", self.settings.device)
            self.addresses.discard(ip)

    async def cleanup(self) -> None:
        for listener in self.listeners.values():
            await listener.close()
        self.listeners.clear()
        if self.addresses:
            await self._addresses(set())


async def _ip(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0 and b"Cannot assign" not in err:
        log.warning("proxy: ip %s failed: %s", " ".join(args), err.decode(errors="replace").strip())
