"""Pod "networking" for the ``process`` runtime: each Pod gets its own 127.x.y.z address, nothing else.

Without root there are no namespaces, veths or bridges, but Linux treats all of 127.0.0.0/8 as local with no
configuration at all, so a Pod whose processes bind its own loopback address (passed to them as the Pod IP) can
serve on the same port as another Pod. This is NOT isolation: every Pod shares the host's network namespace,
a process that binds 0.0.0.0 still collides with others, and any local process can reach any Pod. The
``process`` runtime must say so in its Node conditions and log.

``LoopbackNetwork`` keeps ``PodNetwork``'s interface (``PodNetworkProvider``) and its addressing rules:
addresses come from a 127.x range derived from the node's pod CIDR (10.42.3.0/24 → 127.42.3.0/24), the
network and first address are skipped as host-local skips them, and allocation continues after the last
address handed out, so a replacement Pod gets a new address. Reservations are files under
``<state_dir>/loopback`` so they survive an agent restart (``recover``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os

from .base import NetworkError, PodNetworkInfo
from .records import RecordStore

log = logging.getLogger(__name__)

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
HOST_LOCALHOST = ipaddress.ip_address("127.0.0.1")
DEFAULT_LOOPBACK_CIDR = "127.42.0.0/24"


def loopback_cidr_for(pod_cidr: str) -> str:
    """The 127.x range standing in for ``pod_cidr``: its last three octets under 127/8 (at least a /8)."""
    if not pod_cidr:
        return DEFAULT_LOOPBACK_CIDR
    network = ipaddress.ip_network(pod_cidr, strict=False)
    if network.version != 4:
        return DEFAULT_LOOPBACK_CIDR
    low = int(network.network_address) & 0x00FFFFFF
    return str(ipaddress.ip_network((int(LOOPBACK.network_address) | low, max(network.prefixlen, 8))))


class LoopbackNetwork:
    """Per-Pod 127.x addresses in the host's network namespace (see the module docstring)."""

    def __init__(self, cidr: str, state_dir: str) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        if network.version != 4 or not network.subnet_of(LOOPBACK):  # type: ignore[arg-type]
            raise NetworkError(f"loopback pod range {cidr} is not inside 127.0.0.0/8")
        if network.num_addresses < 4:
            raise NetworkError(f"loopback pod range {cidr} is too small")
        self.cidr = str(network)
        self.prefix_len = network.prefixlen
        self._first = int(network.network_address) + 2
        self._last = int(network.broadcast_address) - 1
        self.directory = os.path.join(state_dir, "loopback")
        self._records = RecordStore(os.path.join(self.directory, "pods"))
        self._last_path = os.path.join(self.directory, "last_reserved_ip")
        self._pods: dict[str, PodNetworkInfo] = {}
        self._lock = asyncio.Lock()  # allocation is a read-modify-write of the whole range; it takes microseconds

    def get(self, pod_uid: str) -> PodNetworkInfo | None:
        return self._pods.get(pod_uid)

    def pods(self) -> list[PodNetworkInfo]:
        return list(self._pods.values())

    async def start(self) -> None:
        os.makedirs(self._records.directory, mode=0o700, exist_ok=True)
        log.warning("pod network: no isolation; each Pod gets a 127.x address from %s in the host's "
                    "network namespace", self.cidr)

    async def shutdown(self, *, remove_bridge: bool = False) -> None:
        """Nothing node-wide to remove; reservations stay for the next agent."""

    async def setup(self, pod_uid: str, pod_namespace: str, pod_name: str) -> PodNetworkInfo:
        async with self._lock:
            known = self._pods.get(pod_uid)
            if known is not None:
                return known
            record = await self._records.read(pod_uid)
            if not record or "ip" not in record:
                record = {"namespace": pod_namespace, "name": pod_name, "ip": await self._allocate()}
                await self._records.write(pod_uid, record)
            info = self._info(pod_uid, record)
            self._pods[pod_uid] = info
            return info

    async def teardown(self, pod_uid: str) -> None:
        async with self._lock:
            await self._records.remove(pod_uid)
            self._pods.pop(pod_uid, None)

    async def check(self, pod_uid: str) -> None:
        if pod_uid not in self._pods:
            raise NetworkError(f"pod {pod_uid} has no network")

    async def recover(self) -> list[PodNetworkInfo]:
        async with self._lock:
            for uid, record in (await self._records.all()).items():
                if "ip" in record:
                    self._pods[uid] = self._info(uid, record)
                else:
                    await self._records.remove(uid)
            return list(self._pods.values())

    def _info(self, pod_uid: str, record: dict[str, str]) -> PodNetworkInfo:
        return PodNetworkInfo(pod_uid, str(record.get("namespace", "")), str(record.get("name", "")), "",
                              str(record["ip"]), "", self.prefix_len, "lo")

    async def _allocate(self) -> str:
        used = {int(ipaddress.ip_address(r["ip"])) for r in (await self._records.all()).values() if "ip" in r}
        used.add(int(HOST_LOCALHOST))
        last = await asyncio.to_thread(self._read_last)
        candidate = last if self._first <= last <= self._last else self._last
        for _ in range(self._last - self._first + 1):
            candidate = candidate + 1 if candidate < self._last else self._first
            if candidate not in used:
                ip = str(ipaddress.ip_address(candidate))
                await asyncio.to_thread(self._write_last, ip)
                return ip
        raise NetworkError(f"no IP addresses available in range {self.cidr}")

    def _read_last(self) -> int:
        try:
            with open(self._last_path, encoding="utf-8") as f:
                return int(ipaddress.ip_address(f.read().strip()))
        except (FileNotFoundError, ValueError):
            return 0

    def _write_last(self, ip: str) -> None:
        os.makedirs(self.directory, exist_ok=True)
        temp = f"{self._last_path}.tmp"
        with open(temp, "w", encoding="utf-8") as f:
            f.write(ip)
        os.replace(temp, self._last_path)
