"""The ``kube-dns`` Service in kube-system and the endpoints that lead to this server.

Pods are told to ask the Service's fixed ClusterIP (10.43.0.10 by default); the proxy sends that on to the
endpoints. The Service has no selector -- the endpoint controller leaves it alone -- and each DNS server keeps
one EndpointSlice of its own (``kube-dns-<node>``) with the address and port it listens on. The core/v1
Endpoints object is the union of those slices, for clients that still read Endpoints, labelled
``endpointslice.kubernetes.io/skip-mirror`` so it is not mirrored back into a slice. Slices of servers whose
Node no longer exists are removed. Everything here is
create-or-repair, so it runs on every start and after the objects were edited or deleted.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from nanokube.api.errors import AlreadyExists, Conflict, NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON, Client

log = logging.getLogger(__name__)
MANAGED_BY = "dns.nanokube.io"
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "KubeDNS"}


def _ports(port: int) -> list[JSON]:
    return [{"name": "dns", "port": port, "protocol": "UDP"}, {"name": "dns-tcp", "port": port, "protocol": "TCP"}]


def service_body(name: str, cluster_ip: str, port: int) -> JSON:
    ports = [{**p, "port": 53, "targetPort": port} for p in _ports(port)]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": dict(LABELS)},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports,
                     "sessionAffinity": "None"}}


def slice_name(service: str, node_name: str) -> str:
    slug = re.sub(r"[^a-z0-9.-]+", "-", (node_name or "local").lower()).strip("-.") or "local"
    return f"{service}-{slug}"[:253]


async def ensure_dns_service(client: Client, *, address: str, port: int = 53, cluster_ip: str = "10.43.0.10",
                             namespace: str = "kube-system", name: str = "kube-dns", node_name: str = "") -> JSON:
    """Create or repair the DNS Service, this server's EndpointSlice and the Endpoints; return the Service.

    ``address``:``port`` is where this server listens (pods must be able to reach it). A Service of that name
    with another ClusterIP is replaced; a ClusterIP taken by another Service fails with the API's Invalid."""
    svc = await _ensure_service(client, namespace, name, cluster_ip, port)
    await _ensure_slice(client, svc, address, port, node_name)
    await _prune_slices(client, namespace, name, keep=slice_name(name, node_name))
    await sync_endpoints(client, namespace, name)
    return svc


async def _prune_slices(client: Client, namespace: str, service: str, keep: str) -> None:
    """Delete other DNS servers' slices whose node no longer exists (a renamed or removed node)."""
    slices = client.registry.get("discovery.k8s.io", "v1", "endpointslices")
    nodes = client.registry.get("", "v1", "nodes")
    assert slices is not None and nodes is not None
    for s in (await client.list(slices, namespace, label_selector=_selector(service))).items:
        owners = {e.get("nodeName") for e in s.get("endpoints") or []}
        if s["metadata"]["name"] == keep or not owners or None in owners:
            continue
        missing = True
        for node in owners:
            try:
                await client.get(nodes, "", str(node))
                missing = False
            except NotFound:
                pass
        if missing:
            log.info("removing %s/%s: its node is gone", namespace, s["metadata"]["name"])
            try:
                await client.delete(slices, namespace, s["metadata"]["name"], uid=s["metadata"]["uid"])
            except (NotFound, Conflict):
                pass


def _selector(service: str) -> str:
    return f"kubernetes.io/service-name={service},endpointslice.kubernetes.io/managed-by={MANAGED_BY}"


async def _ensure_service(client: Client, namespace: str, name: str, cluster_ip: str, port: int) -> JSON:
    services = client.registry.get("", "v1", "services")
    assert services is not None
    want = service_body(name, cluster_ip, port)
    for _ in range(5):
        try:
            live = await client.get(services, namespace, name)
        except NotFound:
            try:
                return await client.create(services, namespace, want)
            except AlreadyExists:
                continue
        spec = live.get("spec") or {}
        if spec.get("clusterIP") != cluster_ip:
            log.warning("%s/%s has ClusterIP %s, not %s: replacing it", namespace, name, spec.get("clusterIP"),
                        cluster_ip)
            try:
                await client.delete(services, namespace, name, uid=live["metadata"]["uid"])
            except (NotFound, Conflict):
                pass
            continue
        if not spec.get("selector") and _same_ports(spec.get("ports"), want["spec"]["ports"]) \
                and spec.get("type", "ClusterIP") == "ClusterIP":
            return live
        fixed = deep_copy(live)
        fixed["spec"].pop("selector", None)
        fixed["spec"]["ports"] = want["spec"]["ports"]
        fixed["spec"]["type"] = "ClusterIP"
        try:
            return await client.update(services, namespace, fixed)
        except (Conflict, NotFound):
            continue
    raise Conflict(f"could not create or repair the Service {namespace}/{name}: it kept changing")


def _same_ports(have: Any, want: list[JSON]) -> bool:
    def norm(ports: Any) -> set[tuple[Any, ...]]:
        return {(p.get("name"), p.get("port"), p.get("protocol", "TCP"), p.get("targetPort")) for p in ports or []}
    return norm(have) == norm(want)


async def _ensure_slice(client: Client, svc: JSON, address: str, port: int, node_name: str) -> None:
    slices = client.registry.get("discovery.k8s.io", "v1", "endpointslices")
    assert slices is not None
    namespace, service = svc["metadata"]["namespace"], svc["metadata"]["name"]
    endpoint: JSON = {"addresses": [address], "conditions": {"ready": True, "serving": True, "terminating": False}}
    if node_name:
        endpoint["nodeName"] = node_name
    body: JSON = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name(service, node_name), "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by":
                                MANAGED_BY, "k8s-app": "kube-dns"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service,
                                          "uid": svc["metadata"]["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "addressType": "IPv6" if ":" in address else "IPv4", "endpoints": [endpoint], "ports": _ports(port)}
    await _create_or_replace(client, slices, namespace, body, ("addressType", "endpoints", "ports"))


async def sync_endpoints(client: Client, namespace: str = "kube-system", name: str = "kube-dns") -> None:
    """Write the Endpoints ``name`` as the union of the DNS servers' EndpointSlices for that Service."""
    slices_res = client.registry.get("discovery.k8s.io", "v1", "endpointslices")
    endpoints_res = client.registry.get("", "v1", "endpoints")
    assert slices_res is not None and endpoints_res is not None
    listed = await client.list(slices_res, namespace, label_selector=_selector(name))
    addresses: dict[str, JSON] = {}
    ports: list[JSON] = []
    for s in sorted(listed.items, key=lambda s: s["metadata"]["name"]):
        ports = ports or [{k: p[k] for k in ("name", "port", "protocol")} for p in s.get("ports") or []]
        for e in s.get("endpoints") or []:
            if (e.get("conditions") or {}).get("ready") is False:
                continue
            for ip in e.get("addresses") or []:
                entry: JSON = {"ip": ip}
                if e.get("nodeName"):
                    entry["nodeName"] = e["nodeName"]
                addresses.setdefault(ip, entry)
    # Our slices are the source: the mirroring controller must not copy these Endpoints into another slice.
    labels = {**LABELS, "endpointslice.kubernetes.io/skip-mirror": "true"}
    body: JSON = {"apiVersion": "v1", "kind": "Endpoints",
                  "metadata": {"name": name, "namespace": namespace, "labels": labels}}
    if addresses:
        body["subsets"] = [{"addresses": list(addresses.values()), "ports": ports}]
    await _create_or_replace(client, endpoints_res, namespace, body, ("subsets",))


async def _create_or_replace(client: Client, resource: Any, namespace: str, body: JSON,
                             fields: tuple[str, ...]) -> None:
    name = body["metadata"]["name"]
    for _ in range(5):
        try:
            live = await client.get(resource, namespace, name)
        except NotFound:
            try:
                await client.create(resource, namespace, body)
                return
            except AlreadyExists:
                continue
        labels = {**(live["metadata"].get("labels") or {}), **body["metadata"]["labels"]}
        if all(live.get(f) == body.get(f) for f in fields) and labels == live["metadata"].get("labels"):
            return
        updated = deep_copy(live)
        updated["metadata"]["labels"] = labels
        for f in fields:
            if f in body:
                updated[f] = body[f]
            else:
                updated.pop(f, None)
        try:
            await client.update(resource, namespace, updated)
            return
        except (Conflict, NotFound):
            continue
    raise Conflict(f"could not write {resource.plural} {namespace}/{name}: it kept changing")
