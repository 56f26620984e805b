"""Cross-node Pod routes, as a plan: which other node's pod CIDR goes where, and the commands that make it so.

Every native node routes the other native nodes' pod CIDRs to them, the way flannel does with its two
backends:

* **host-gw**, when the other node's InternalIP is on a directly connected network (``ip route get`` shows no
  gateway): ``ip route replace <cidr> via <node ip>``. No encapsulation, no MTU cost.
* **VXLAN**, when it is not: one ``vxlan`` device per node (VNI 1, UDP 8472, flannel's defaults) whose VTEP
  has the node's pod CIDR's network address (a /32) and a MAC derived from it, so nobody needs to publish
  it: for each remote node a forwarding entry (its VTEP MAC at its node IP), a permanent neighbour (its VTEP
  address at that MAC) and an on-link route of its pod CIDR via its VTEP address.

This module is pure: ``peers`` reads Nodes, ``plan`` decides, ``diff`` turns two plans into ``ip``/``bridge``
command lines. ``crossnode.RouteManager`` watches Nodes and runs them. Only native nodes take part (their
``nodeInfo.containerRuntimeVersion`` starts with ``native://``): simulated nodes have made-up addresses and
``process`` nodes have no pod network to route to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
VXLAN_VNI = 1
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50  # outer IPv4 + UDP + VXLAN + inner Ethernet headers
NATIVE_RUNTIME_PREFIX = "native://"


@dataclass(frozen=True)
class Peer:
    """Another node Pods can be routed to: its name, pod CIDR and the address its traffic goes to."""

    name: str
    pod_cidr: str
    address: str

    @property
    def vtep_ip(self) -> str:
        return vtep_ip(self.pod_cidr)

    @property
    def vtep_mac(self) -> str:
        return vtep_mac(self.pod_cidr)


@dataclass(frozen=True)
class VxlanDevice:
    name: str
    local_address: str  # this node's address, the tunnels' source
    pod_cidr: str  # this node's pod CIDR: the VTEP's address and MAC derive from it
    mtu: int = 0  # 0: the kernel's choice (the underlying link's MTU minus the overhead)


@dataclass(frozen=True)
class RoutePlan:
    host_gw: tuple[Peer, ...] = ()
    vxlan: tuple[Peer, ...] = ()
    device: VxlanDevice | None = None  # set when ``vxlan`` is not empty

    def cidrs(self) -> set[str]:
        return {p.pod_cidr for p in (*self.host_gw, *self.vxlan)}


@dataclass
class Commands:
    """Command lines to run in order; ``tolerant`` ones may fail (removing what is already gone)."""

    steps: list[tuple[list[str], bool]] = field(default_factory=list)

    def must(self, *argv: str) -> None:
        self.steps.append((list(argv), False))

    def may(self, *argv: str) -> None:
        self.steps.append((list(argv), True))


def vtep_ip(pod_cidr: str) -> str:
    """A node's VTEP address: its pod CIDR's network address (the bridge has the first host address)."""
    return str(ipaddress.ip_network(pod_cidr, strict=False).network_address)


def vtep_mac(pod_cidr: str) -> str:
    """A locally administered unicast MAC carrying the VTEP address, so peers can compute it."""
    octets = ipaddress.IPv4Network(pod_cidr, strict=False).network_address.packed
    return ":".join(f"{b:02x}" for b in (0x0E, 0x6B, *octets))


def _internal_ip(node: JSON) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address") and ":" not in address["address"]:
            return str(address["address"])
    return ""


def is_native(node: JSON) -> bool:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return str(info.get("containerRuntimeVersion") or "").startswith(NATIVE_RUNTIME_PREFIX)


def peers(nodes: Iterable[JSON], self_name: str, cluster_cidr: str = "") -> list[Peer]:
    """The native nodes other than ``self_name`` that have an IPv4 pod CIDR (inside ``cluster_cidr`` if
    given) and an InternalIP, sorted by name."""
    cluster = ipaddress.ip_network(cluster_cidr, strict=False) if cluster_cidr else None
    found = []
    for node in nodes:
        name = node["metadata"]["name"]
        cidr = (node.get("spec") or {}).get("podCIDR") or ""
        address = _internal_ip(node)
        if name == self_name or not cidr or not address or not is_native(node):
            continue
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if network.version != 4 or (cluster is not None and not network.subnet_of(cluster)):  # type: ignore[arg-type]
            continue
        found.append(Peer(name, str(network), address))
    return sorted(found, key=lambda p: p.name)


def plan(remote: Iterable[Peer], connected: Callable[[str], bool], *, device: str, local_address: str,
         local_pod_cidr: str, mtu: int = 0) -> RoutePlan:
    """host-gw for peers whose address is directly ``connected``, VXLAN for the rest. Two peers claiming one
    CIDR (a stale Node) are both left out rather than routed at random."""
    remote = list(remote)
    claims: dict[str, int] = {}
    for p in remote:
        claims[p.pod_cidr] = claims.get(p.pod_cidr, 0) + 1
    usable = [p for p in remote if claims[p.pod_cidr] == 1 and p.pod_cidr != local_pod_cidr]
    direct = tuple(p for p in usable if connected(p.address))
    tunnelled = tuple(p for p in usable if p not in direct)
    vx = VxlanDevice(device, local_address, local_pod_cidr, mtu) if tunnelled else None
    return RoutePlan(direct, tunnelled, vx)


def _add_device(cmds: Commands, dev: VxlanDevice) -> None:
    cmds.may("ip", "link", "del", dev.name)  # a leftover with other parameters
    link = ["ip", "link", "add", dev.name, "address", vtep_mac(dev.pod_cidr), "type", "vxlan",
            "id", str(VXLAN_VNI), "local", dev.local_address, "dstport", str(VXLAN_PORT), "nolearning"]
    cmds.must(*link)
    if dev.mtu:
        cmds.must("ip", "link", "set", dev.name, "mtu", str(dev.mtu))
    cmds.must("ip", "addr", "replace", f"{vtep_ip(dev.pod_cidr)}/32", "dev", dev.name)
    cmds.must("ip", "link", "set", dev.name, "up")


def _add_tunnel(cmds: Commands, dev: str, p: Peer) -> None:
    cmds.must("bridge", "fdb", "replace", p.vtep_mac, "dev", dev, "dst", p.address)
    cmds.must("ip", "neigh", "replace", p.vtep_ip, "lladdr", p.vtep_mac, "dev", dev, "nud", "permanent")
    cmds.must("ip", "route", "replace", p.pod_cidr, "via", p.vtep_ip, "dev", dev, "onlink")


def _remove_tunnel(cmds: Commands, dev: str, p: Peer) -> None:
    cmds.may("ip", "route", "del", p.pod_cidr, "via", p.vtep_ip, "dev", dev)
    cmds.may("ip", "neigh", "del", p.vtep_ip, "dev", dev)
    cmds.may("bridge", "fdb", "del", p.vtep_mac, "dev", dev, "dst", p.address)


def diff(old: RoutePlan, new: RoutePlan) -> Commands:
    """What turns the host from ``old`` into ``new``: stale routes go first, then the device changes, then
    what is new or moved."""
    cmds = Commands()
    kept_gw = set(new.host_gw)
    for p in old.host_gw:
        if p not in kept_gw:
            cmds.may("ip", "route", "del", p.pod_cidr, "via", p.address)
    device_changed = old.device != new.device
    if old.device is not None:
        if device_changed:
            cmds.may("ip", "link", "del", old.device.name)  # its routes, neighbours and fdb go with it
        else:
            for p in old.vxlan:
                if p not in new.vxlan:
                    _remove_tunnel(cmds, old.device.name, p)
    if new.device is not None and device_changed:
        _add_device(cmds, new.device)
    for p in new.host_gw:
        if p not in old.host_gw:
            cmds.must("ip", "route", "replace", p.pod_cidr, "via", p.address)
    if new.device is not None:
        for p in new.vxlan:
            if device_changed or p not in old.vxlan:
                _add_tunnel(cmds, new.device.name, p)
    return cmds


def teardown(applied: RoutePlan) -> Commands:
    return diff(applied, RoutePlan())


def masquerade_exemption(pod_cidr: str, cluster_cidr: str) -> list[str]:
    """The nat POSTROUTING rule (arguments after ``-t nat -X POSTROUTING``) that keeps Pod-to-Pod traffic
    inside the cluster range un-masqueraded: the CNI bridge plugin masquerades everything that leaves the
    node's own pod CIDR, so without it a Pod would see other nodes' Pods as their node's address."""
    return ["-s", pod_cidr, "-d", cluster_cidr, "-m", "comment", "--comment",
            f"nanokube: pod-to-pod {pod_cidr}", "-j", "RETURN"]
