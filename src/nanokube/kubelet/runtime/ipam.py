"""Pod IP allocation from a node's pod CIDR, the way the CNI ``host-local`` plugin hands them out.

The first address after the network is the bridge gateway (``.1``); Pods get the next free address after the
last one handed out, wrapping around, so a replacement Pod gets a new IP rather than its predecessor's. The
fake and process runtimes use this directly; the native runtime lets host-local do the same on disk.
"""

from __future__ import annotations

import ipaddress

from .interface import SandboxFailure


class IPPool:
    def __init__(self, cidr: str) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(network)
        self._version = network.version
        base = int(network.network_address)
        size = network.num_addresses
        # .0 is the network, .1 the gateway, the last the broadcast (IPv4); tiny networks keep what they can.
        self._first = base + 2 if size > 4 else base
        self._last = base + size - 2 if size > 4 else base + size - 1
        self._cursor = self._first - 1
        self._used: set[int] = set()

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_address(self._first - 1))

    def allocate(self) -> str:
        """A free address; raises SandboxFailure when the range is exhausted."""
        span = self._last - self._first + 1
        candidate = self._cursor
        for _ in range(span):
            candidate = candidate + 1 if candidate < self._last else self._first
            if candidate not in self._used:
                self._used.add(candidate)
                self._cursor = candidate
                return str(ipaddress.ip_address(candidate))
        raise SandboxFailure(f"failed to allocate for range 0: no IP addresses available in range set: "
                             f"{ipaddress.ip_address(self._first)}-{ipaddress.ip_address(self._last)}")

    def reserve(self, ip: str) -> None:
        """Mark ``ip`` used (an address a recovered sandbox already holds)."""
        self._used.add(int(ipaddress.ip_address(ip)))

    def release(self, ip: str) -> None:
        if ip:
            self._used.discard(int(ipaddress.ip_address(ip)))

    def __len__(self) -> int:
        return len(self._used)
