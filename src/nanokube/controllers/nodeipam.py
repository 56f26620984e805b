"""Node IPAM: a Node that registers without ``spec.podCIDR`` gets one from the cluster's pod range.

What kube-controller-manager's node IPAM controller does with its range allocator
(``--allocate-node-cidrs --cluster-cidr 10.42.0.0/16 --node-cidr-mask-size 24``): every CIDR a Node already
holds is marked used (the local node's 10.42.0.0/24, simulated nodes', anything set by hand, even outside the
range), and a Node without one gets the lowest free /24, written once (``spec.podCIDR`` and
``spec.podCIDRs``; the API never changes a set podCIDR, and neither does this). A deleted Node's CIDR is free
again. ``nanokube agent`` registers without a podCIDR and waits for this before it starts its Pod network.

The allocation table is rebuilt from the informer on every sync: the cache is the truth, so a restart of the
controller (or a second control plane taking over) cannot hand out a CIDR twice once its cache has synced.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass

from nanokube.api.errors import NotFound
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class NodeIPAMSettings:
    cluster_cidr: str = "10.42.0.0/16"
    node_mask_size: int = 24


def node_cidrs(node: JSON) -> list[str]:
    spec = node.get("spec") or {}
    found = list(spec.get("podCIDRs") or [])
    if spec.get("podCIDR") and spec["podCIDR"] not in found:
        found.append(spec["podCIDR"])
    return found


def _parse(cidr: str) -> Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


class CIDRAllocator:
    """The /``mask`` subnets of ``cluster_cidr``, with the ones that overlap anything in use skipped."""

    def __init__(self, cluster_cidr: str, mask: int) -> None:
        self.range = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask < self.range.prefixlen or mask > self.range.max_prefixlen:
            raise ValueError(f"node CIDR mask /{mask} does not fit in the cluster CIDR {cluster_cidr}")
        self.mask = mask

    def candidates(self) -> Iterator[Network]:
        return self.range.subnets(new_prefix=self.mask)

    def next_free(self, used: Iterable[str]) -> str | None:
        """The lowest subnet that overlaps no CIDR in ``used``; None when the range is full."""
        taken = [n for n in (_parse(c) for c in used) if n is not None and n.version == self.range.version]
        for subnet in self.candidates():
            if not any(subnet.overlaps(t) for t in taken):
                return str(subnet)
        return None


class NodeIPAMController(Controller):
    name = "nodeipam"

    def __init__(self, client: Client, settings: NodeIPAMSettings | None = None) -> None:
        super().__init__(client)
        self.settings = settings or NodeIPAMSettings()
        self.allocator = CIDRAllocator(self.settings.cluster_cidr, self.settings.node_mask_size)
        nodes = client.registry.get("", "v1", "nodes")
        assert nodes is not None
        self.nodes_res = nodes
        self.nodes = self.informer(Informer(client, nodes))
        # Names handed a CIDR whose write the cache has not shown yet: (name, cidr).
        self._assigned: dict[str, str] = {}
        self.nodes.add_handler(self._on_node)

    def _on_node(self, kind: str, obj: JSON, old: JSON | None) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED" or node_cidrs(obj):
            self._assigned.pop(name, None)
        if kind != "DELETED" and not node_cidrs(obj):
            self.queue.add(name)

    def _used(self) -> list[str]:
        used = [c for node in self.nodes.items() for c in node_cidrs(node)]
        return used + list(self._assigned.values())

    async def sync(self, key: Hashable) -> float | None:
        name = str(key)
        node = self.nodes.get(name)
        if node is None or node_cidrs(node) or node["metadata"].get("deletionTimestamp"):
            return None
        cidr = self._assigned.get(name) or self.allocator.next_free(self._used())
        if cidr is None:
            log.warning("node %s: no pod CIDR left in %s (/%d each)", name, self.settings.cluster_cidr,
                        self.settings.node_mask_size)
            return 30.0
        self._assigned[name] = cidr
        try:
            await self.client.patch(self.nodes_res, "", name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}},
                                    patch_type="strategic")
        except NotFound:
            self._assigned.pop(name, None)
            return None
        log.info("node %s: pod CIDR %s", name, cidr)
        return None
