"""What the proxy needs from Services and EndpointSlices, read into small frozen records.

``service_ports`` turns one Service into one ``ServicePort`` per port it proxies (none for headless and
ExternalName Services); ``endpoints_for`` finds the endpoints of one such port in the Service's
EndpointSlices (IPv4 only, deduplicated by ip:port); ``categorize`` picks the endpoints traffic may go to
the way kube-proxy's ``CategorizeEndpoints`` does: ready ones, or, when none is ready, the serving and
terminating ones. Everything here is pure so rule generation can be tested without a cluster.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, Kubernetes' default for sessionAffinity: ClientIP
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    service: str
    port_name: str
    protocol: str  # nft spelling: tcp, udp, sctp
    port: int
    cluster_ips: tuple[str, ...]
    node_port: int = 0
    external_ips: tuple[str, ...] = ()  # spec.externalIPs and load-balancer ingress IPs
    affinity_timeout: int = 0  # seconds of sessionAffinity: ClientIP; 0 is no affinity
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local

    @property
    def id(self) -> str:
        """``namespace/service/protocol/port``: unique per proxied port, used in chain names."""
        return f"{self.namespace}/{self.service}/{self.protocol}/{self.port}"


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node: str = ""

    @property
    def id(self) -> str:
        return f"{self.ip}/{self.port}"


def _ipv4(values: Iterable[Any]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        try:
            if isinstance(value, str) and ipaddress.ip_address(value).version == 4 and value not in found:
                found.append(value)
        except ValueError:
            continue
    return tuple(found)


def service_ports(svc: JSON) -> list[ServicePort]:
    """The ports of ``svc`` that get rules; empty for headless, ExternalName and unallocated Services."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    cluster_ips = _ipv4(spec.get("clusterIPs") or [spec.get("clusterIP")])
    if not cluster_ips:
        return []  # headless ("None") or not yet allocated
    ingress = [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
    external = _ipv4([*(spec.get("externalIPs") or []), *ingress])
    timeout = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        timeout = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    ports = []
    for port in spec.get("ports") or []:
        protocol = PROTOCOLS.get(port.get("protocol") or "TCP")
        if protocol is None or not port.get("port"):
            continue
        ports.append(ServicePort(
            namespace=svc["metadata"].get("namespace", ""), service=svc["metadata"]["name"],
            port_name=port.get("name") or "", protocol=protocol, port=int(port["port"]), cluster_ips=cluster_ips,
            node_port=int(port.get("nodePort") or 0) if node_ports else 0, external_ips=external,
            affinity_timeout=timeout, external_local=spec.get("externalTrafficPolicy") == "Local",
            internal_local=spec.get("internalTrafficPolicy") == "Local"))
    return ports


def slice_service(obj: JSON) -> str:
    """``namespace/service`` an EndpointSlice belongs to, or "" when it names none."""
    name = (obj["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{obj['metadata'].get('namespace', '')}/{name}" if name else ""


def endpoints_for(port: ServicePort, slices: Iterable[JSON]) -> list[Endpoint]:
    """The endpoints of ``port`` listed by ``slices`` (the Service's slices), sorted, first listing wins."""
    found: dict[str, Endpoint] = {}
    for obj in slices:
        if obj.get("addressType", "IPv4") != "IPv4":
            continue
        target = None
        for sp in obj.get("ports") or []:
            if (sp.get("name") or "") == port.port_name and PROTOCOLS.get(sp.get("protocol") or "TCP") == port.protocol:
                target = sp.get("port")
                break
        if not target:
            continue
        for ep in obj.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False  # unset means ready
            serving = cond.get("serving") if cond.get("serving") is not None else ready
            terminating = bool(cond.get("terminating"))
            node = ep.get("nodeName") or (ep.get("topology") or {}).get("kubernetes.io/hostname") or ""
            for ip in _ipv4((ep.get("addresses") or [])[:1]):
                endpoint = Endpoint(ip, int(target), ready, bool(serving), terminating, node)
                found.setdefault(endpoint.id, endpoint)
    return sorted(found.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port))


def categorize(endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints to balance over: the ready ones, else those still serving while terminating."""
    ready = [e for e in endpoints if e.ready]
    if ready:
        return ready
    return [e for e in endpoints if e.serving and e.terminating]
