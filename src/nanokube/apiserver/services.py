"""Service addresses: ClusterIPs from the service CIDR and NodePorts from their range.

An admission step on Service writes, as kube-apiserver's service REST does: a new Service gets a free
ClusterIP (or keeps the one it asked for, if free and in range), headless (``None``) and ExternalName Services
get none, and every port of a NodePort or LoadBalancer Service gets a node port. Updates keep what was
allocated unless the Service's type gives it up. Allocations are tracked in memory, rebuilt from the store on
first use, and released when a Service is removed.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from nanokube.api.errors import FieldError, Invalid
from nanokube.api.registry import Resource

from .storage import JSON, ObjectStorage


class ServiceAllocator:
    def __init__(self, storage: ObjectStorage, cidr: str, node_ports: tuple[int, int]) -> None:
        self.storage = storage
        self.network = ipaddress.ip_network(cidr)
        self.node_ports = node_ports
        self._ips: set[str] | None = None
        self._ports: set[int] = set()
        storage.after_write.append(self._released)

    @property
    def kubernetes_ip(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def dns_ip(self) -> str:
        return str(self.network.network_address + 10)

    async def _load(self) -> set[str]:
        if self._ips is None:
            ips: set[str] = set()
            page = await self.storage.store.list("/core/services/")
            for kv in page.items:
                spec = kv.value.get("spec") or {}
                ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None")
                self._ports.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
            self._ips = ips
        return self._ips

    async def admit(self, resource: Resource, obj: JSON, live: JSON | None) -> None:
        if resource.group != "" or resource.plural != "services":
            return
        used = await self._load()
        spec = obj.setdefault("spec", {})
        old_spec = (live or {}).get("spec") or {}
        errors: list[FieldError] = []
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        elif live is not None and old_spec.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_spec["clusterIP"]]
        elif live is None:
            errors.extend(self._assign_ip(spec, used))
        if kind in ("NodePort", "LoadBalancer"):
            errors.extend(self._assign_node_ports(spec, old_spec))
        else:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
        if errors:
            raise Invalid("Service", "", obj["metadata"].get("name", ""), errors)

    def _assign_ip(self, spec: JSON, used: set[str]) -> list[FieldError]:
        wanted = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if wanted == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return []
        if wanted:
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                return [FieldError.invalid("spec.clusterIPs[0]", wanted, "must be a valid IP address")]
            if address not in self.network:
                return [FieldError.invalid("spec.clusterIPs", [wanted],
                                           f"failed to allocate IP {wanted}: the provided IP ({wanted}) is not in "
                                           f"the valid range. The range of valid IPs is {self.network}")]
            if wanted in used:
                return [FieldError.invalid("spec.clusterIPs", [wanted],
                                           f"failed to allocate IP {wanted}: provided IP is already allocated")]
            chosen = wanted
        else:
            chosen = self._free_ip(used)
            if chosen is None:
                return [FieldError("Invalid", "spec.clusterIPs", detail="failed to allocate a serviceIP: range is "
                                                                       "full")]
        used.add(chosen)
        spec["clusterIP"] = chosen
        spec["clusterIPs"] = [chosen]
        return []

    def _free_ip(self, used: set[str]) -> str | None:
        size = self.network.num_addresses
        # Kubernetes keeps the lower band for static addresses (kubernetes at .1, DNS at .10); draw from above.
        low = min(16, size - 2)
        for _ in range(64):
            candidate = str(self.network.network_address + random.randint(low, size - 2))
            if candidate not in used:
                return candidate
        reserved = {self.kubernetes_ip, self.dns_ip}  # only ever handed out when asked for by address
        for offset in range(1, size - 1):
            candidate = str(self.network.network_address + offset)
            if candidate not in used and candidate not in reserved:
                return candidate
        return None

    def _assign_node_ports(self, spec: JSON, old_spec: JSON) -> list[FieldError]:
        errors = []
        lo, hi = self.node_ports
        old = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []}
        own = {n for n in old.values() if n}
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            if not wanted:
                wanted = old.get((port.get("port"), port.get("protocol", "TCP")))
                if wanted:
                    port["nodePort"] = wanted
                    continue
                free = [n for n in range(lo, hi + 1) if n not in self._ports]
                if not free:
                    errors.append(FieldError("Invalid", f"spec.ports[{i}].nodePort",
                                             detail="failed to allocate a nodePort: range is full"))
                    continue
                port["nodePort"] = random.choice(free)
                self._ports.add(port["nodePort"])
                continue
            if not lo <= wanted <= hi:
                errors.append(FieldError.invalid(f"spec.ports[{i}].nodePort", wanted,
                                                 f"provided port is not in the valid range. The range of valid "
                                                 f"ports is {lo}-{hi}"))
            elif wanted in self._ports and wanted not in own:
                errors.append(FieldError.invalid(f"spec.ports[{i}].nodePort", wanted,
                                                 "provided port is already allocated"))
            else:
                self._ports.add(wanted)
        return errors

    async def _released(self, resource: Resource, verb: str, obj: Any) -> None:
        if verb != "delete" or resource.group != "" or resource.plural != "services" or self._ips is None:
            return
        spec = obj.get("spec") or {}
        for ip in spec.get("clusterIPs") or []:
            self._ips.discard(ip)
        for port in spec.get("ports") or []:
            self._ports.discard(port.get("nodePort"))
