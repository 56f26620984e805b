"""The nftables rule set for a snapshot of Services and EndpointSlices: a pure function, no I/O.

Shaped after kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go), in one ``ip`` table:

- map ``service-ips`` (cluster and external IP . protocol . port) and ``service-nodeports`` (protocol . port)
  send new connections to a per-port chain; the static ``services`` chain, jumped to from the nat prerouting
  and output hooks, consults them (node ports only on the node's own addresses, set ``nodeport-ips``).
- ``service-…`` (all usable endpoints) picks an endpoint with ``numgen random``; ``local-…`` does the same over
  this node's endpoints (internal/externalTrafficPolicy: Local) and drops when there are none;
  ``external-…`` is where node ports and external IPs enter: with policy Cluster it masquerades, with Local it
  keeps the client address and sends Pod- and host-originated traffic cluster-wide as kube does.
- ``endpoint-…`` DNATs to one endpoint; traffic from that endpoint to itself (hairpin) is marked for
  masquerade; with ``sessionAffinity: ClientIP`` it records the client in a timed ``affinity-…`` set that the
  dispatching chain checks first.
- Ports with no endpoints at all are entered in ``no-endpoint-services``/``no-endpoint-nodeports``, which the
  filter hooks turn into a reject (ICMP port unreachable), as kube does.
- Traffic to a cluster IP from outside the cluster's pod range is masqueraded (masqueradeAll=false with a
  clusterCIDR).

``build_ruleset`` returns a ``Ruleset``: the dynamic chains, map/set contents and affinity sets. The static
skeleton (base chains, maps' declarations) lives in ``nftscript`` with the rendering.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import JSON, Endpoint, ServicePort, categorize, endpoints_for, service_ports, slice_service

MASQ_MARK = "0x4000"


@dataclass(frozen=True)
class NodeContext:
    """What the rules depend on besides Services and slices."""
    node_name: str
    node_ips: tuple[str, ...] = ()
    cluster_cidr: str = "10.42.0.0/16"


@dataclass(frozen=True)
class Snapshot:
    """What a sync sees: Services and their slices (by ``namespace/name``) and this node's context."""
    services: dict[str, JSON]
    slices: dict[str, list[JSON]]
    ctx: NodeContext


@dataclass
class Ruleset:
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # regular chain name -> its rules
    service_ips: dict[str, str] = field(default_factory=dict)  # "ip . proto . port" -> verdict
    service_nodeports: dict[str, str] = field(default_factory=dict)  # "proto . port" -> verdict
    no_endpoint_services: dict[str, str] = field(default_factory=dict)
    no_endpoint_nodeports: dict[str, str] = field(default_factory=dict)
    affinity_sets: dict[str, int] = field(default_factory=dict)  # set name -> timeout seconds
    nodeport_ips: tuple[str, ...] = ()

    def merge(self, other: Ruleset) -> None:
        self.chains.update(other.chains)
        self.service_ips.update(other.service_ips)
        self.service_nodeports.update(other.service_nodeports)
        self.no_endpoint_services.update(other.no_endpoint_services)
        self.no_endpoint_nodeports.update(other.no_endpoint_nodeports)
        self.affinity_sets.update(other.affinity_sets)

    def remove(self, other: Ruleset) -> None:
        """Drop every chain, element and set that ``other`` holds (the inverse of ``merge``)."""
        for mine, theirs in ((self.chains, other.chains), (self.service_ips, other.service_ips),
                             (self.service_nodeports, other.service_nodeports),
                             (self.no_endpoint_services, other.no_endpoint_services),
                             (self.no_endpoint_nodeports, other.no_endpoint_nodeports),
                             (self.affinity_sets, other.affinity_sets)):
            for key in theirs:
                mine.pop(key, None)


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def chain_name(kind: str, port: ServicePort, endpoint: Endpoint | None = None, *, affinity: int = 0) -> str:
    """``kind-HASH-ns/svc/proto/port[__ip/port]``: readable, unique, stable while its content's key is."""
    base = port.id if endpoint is None else f"{port.id}__{endpoint.id}"
    return f"{kind}-{_hash(f'{base}/{affinity}')}-{base}"


def _dispatch(port: ServicePort, endpoints: list[Endpoint], rules: list[str]) -> None:
    """Append the rules choosing one of ``endpoints`` (affinity first, then a random pick)."""
    if port.affinity_timeout:
        for ep in endpoints:
            target = chain_name("endpoint", port, ep)
            affinity = chain_name("affinity", port, ep, affinity=port.affinity_timeout)
            rules.append(f"ip saddr @{affinity} goto {target}")
    targets = [chain_name("endpoint", port, ep) for ep in endpoints]
    if len(targets) == 1:
        rules.append(f"goto {targets[0]}")
    else:
        choices = ", ".join(f"{i} : goto {t}" for i, t in enumerate(targets))
        rules.append(f"numgen random mod {len(targets)} vmap {{ {choices} }}")


def _endpoint_chain(port: ServicePort, ep: Endpoint, out: Ruleset) -> None:
    rules = [f"ip saddr {ep.ip} jump mark-for-masquerade"]  # hairpin: a Pod reaching itself
    if port.affinity_timeout:
        affinity = chain_name("affinity", port, ep, affinity=port.affinity_timeout)
        out.affinity_sets[affinity] = port.affinity_timeout
        rules.append(f"update @{affinity} {{ ip saddr }}")
    rules.append(f"meta l4proto {port.protocol} dnat to {ep.ip}:{ep.port}")
    out.chains[chain_name("endpoint", port, ep)] = tuple(rules)


def _masquerade_outside(port: ServicePort, ctx: NodeContext) -> str:
    ips = port.cluster_ips[0] if len(port.cluster_ips) == 1 else "{ " + ", ".join(port.cluster_ips) + " }"
    return f"ip daddr {ips} ip saddr != {ctx.cluster_cidr} jump mark-for-masquerade"


def port_rules(port: ServicePort, endpoints: list[Endpoint], ctx: NodeContext) -> Ruleset:
    """Everything one Service port contributes."""
    out = Ruleset()
    usable = categorize(endpoints)
    local = categorize([e for e in endpoints if e.node == ctx.node_name])
    keys = [f"{ip} . {port.protocol} . {port.port}" for ip in port.cluster_ips]
    external_keys = [f"{ip} . {port.protocol} . {port.port}" for ip in port.external_ips]
    nodeport_key = f"{port.protocol} . {port.node_port}" if port.node_port else ""
    if not usable:
        for key in (*keys, *external_keys):
            out.no_endpoint_services[key] = "goto reject-chain"
        if nodeport_key:
            out.no_endpoint_nodeports[nodeport_key] = "goto reject-chain"
        return out
    for ep in usable:
        _endpoint_chain(port, ep, out)
    for ep in local:
        _endpoint_chain(port, ep, out)
    cluster = chain_name("service", port)
    rules = [_masquerade_outside(port, ctx)]
    _dispatch(port, usable, rules)
    out.chains[cluster] = tuple(rules)
    needs_local = port.internal_local or (port.external_local and (port.node_port or port.external_ips))
    local_chain = chain_name("local", port)
    if needs_local:
        rules = [_masquerade_outside(port, ctx)] if port.internal_local else []
        if local:
            _dispatch(port, local, rules)
        else:
            rules.append("drop")  # kube: "has no local endpoints"
        out.chains[local_chain] = tuple(rules)
    internal = local_chain if port.internal_local else cluster
    for key in keys:
        out.service_ips[key] = f"goto {internal}"
    if nodeport_key or external_keys:
        external = chain_name("external", port)
        if port.external_local:
            out.chains[external] = (f"ip saddr {ctx.cluster_cidr} goto {cluster}",  # Pods: cluster-wide
                                    "fib saddr type local jump mark-for-masquerade",
                                    f"fib saddr type local goto {cluster}",  # this host: cluster-wide
                                    f"goto {local_chain}")
        else:
            out.chains[external] = ("jump mark-for-masquerade", f"goto {cluster}")
        for key in external_keys:
            out.service_ips[key] = f"goto {external}"
        if nodeport_key:
            out.service_nodeports[nodeport_key] = f"goto {external}"
    return out


def service_rules(svc: JSON, slices: Iterable[JSON], ctx: NodeContext) -> Ruleset:
    """The rules of one Service given its EndpointSlices (cacheable per resourceVersions)."""
    out = Ruleset()
    slices = list(slices)
    for port in service_ports(svc):
        out.merge(port_rules(port, endpoints_for(port, slices), ctx))
    return out


def group_slices(slices: Iterable[JSON]) -> dict[str, list[JSON]]:
    """EndpointSlices by ``namespace/service``."""
    groups: dict[str, list[JSON]] = {}
    for obj in slices:
        key = slice_service(obj)
        if key:
            groups.setdefault(key, []).append(obj)
    for group in groups.values():
        group.sort(key=lambda o: o["metadata"]["name"])
    return groups


def build_ruleset(services: Iterable[JSON], slices: Iterable[JSON] | Mapping[str, list[JSON]],
                  ctx: NodeContext) -> Ruleset:
    """The whole rule set for this node: every Service's rules plus the node's addresses."""
    groups = slices if isinstance(slices, Mapping) else group_slices(slices)
    out = Ruleset(nodeport_ips=tuple(sorted(set(ctx.node_ips))))
    for svc in services:
        key = f"{svc['metadata'].get('namespace', '')}/{svc['metadata']['name']}"
        out.merge(service_rules(svc, groups.get(key, []), ctx))
    return out
