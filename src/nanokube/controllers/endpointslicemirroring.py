"""EndpointSlices mirrored from hand-written Endpoints of Services without a selector.

The proxy and DNS read EndpointSlices only. For a Service with a selector the endpoints controller writes
both; for a Service without one, users write ``Endpoints`` by hand, and (as Kubernetes' endpointslicemirroring
controller does) this controller copies each subset into an EndpointSlice labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
endpointslicemirroring-controller.k8s.io``, owned by the Endpoints (so the garbage collector removes them with
it). ``addresses`` become ready endpoints, ``notReadyAddresses`` unready ones; IPv4 only, at most 1000
addresses per subset. Endpoints labelled ``endpointslice.kubernetes.io/skip-mirror: "true"``, Endpoints whose
Service is missing or has a selector, get no mirrored slices (existing ones are deleted).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Hashable

from nanokube.api.errors import NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller

log = logging.getLogger(__name__)
MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
MAX_PER_SUBSET = 1000


def _ipv4(address: JSON) -> bool:
    try:
        return ipaddress.ip_address(address.get("ip", "")).version == 4
    except ValueError:
        return False


def _endpoint(address: JSON, ready: bool) -> JSON:
    out: JSON = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
    for field in ("nodeName", "hostname", "targetRef"):
        if address.get(field):
            out[field] = address[field]
    return out


def mirrored_slices(endpoints: JSON) -> list[JSON]:
    """The slice bodies (endpoints, ports, addressType) mirroring ``endpoints``' subsets, in order."""
    out = []
    for subset in endpoints.get("subsets") or []:
        members = [_endpoint(a, True) for a in subset.get("addresses") or [] if _ipv4(a)]
        members += [_endpoint(a, False) for a in subset.get("notReadyAddresses") or [] if _ipv4(a)]
        if not members:
            continue
        ports = [{"name": p.get("name", ""), "port": p.get("port"), "protocol": p.get("protocol", "TCP")}
                 | ({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})
                 for p in subset.get("ports") or []]
        out.append({"addressType": "IPv4", "endpoints": members[:MAX_PER_SUBSET], "ports": ports})
    return out


class EndpointSliceMirroringController(Controller):
    name = "endpointslice-mirroring"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        reg = client.registry
        services, endpoints = reg.get("", "v1", "services"), reg.get("", "v1", "endpoints")
        self.slices_res = reg.get("discovery.k8s.io", "v1", "endpointslices")
        assert services and endpoints and self.slices_res
        self.services = self.informer(Informer(client, services))
        self.endpoints = self.informer(Informer(client, endpoints))
        self.slices = self.informer(Informer(client, self.slices_res,
                                             label_selector=f"endpointslice.kubernetes.io/managed-by={MANAGED_BY}"))
        self.services.add_handler(self._enqueue)
        self.endpoints.add_handler(self._enqueue)
        self.slices.add_handler(self._on_slice)

    def _enqueue(self, kind: str, obj: JSON, old: JSON | None) -> None:
        self.queue.add(f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}")

    def _on_slice(self, kind: str, obj: JSON, old: JSON | None) -> None:
        service = (obj["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if service:
            self.queue.add(f"{obj['metadata'].get('namespace', '')}/{service}")

    def _desired(self, key: str) -> tuple[JSON | None, list[JSON]]:
        svc, eps = self.services.get(key), self.endpoints.get(key)
        if svc is None or eps is None or (svc.get("spec") or {}).get("selector"):
            return None, []
        if (eps["metadata"].get("labels") or {}).get(SKIP_MIRROR) == "true" or eps["metadata"].get("deletionTimestamp"):
            return None, []
        return eps, mirrored_slices(eps)

    async def sync(self, key: Hashable) -> float | None:
        namespace, name = str(key).split("/", 1)
        eps, desired = self._desired(str(key))
        existing = sorted((s for s in self.slices.items() if s["metadata"].get("namespace") == namespace
                           and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name),
                          key=lambda s: s["metadata"]["name"])
        assert self.slices_res is not None
        if eps is not None:
            labels = {k: v for k, v in (eps["metadata"].get("labels") or {}).items() if k != SKIP_MIRROR}
            labels |= {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
            owner = {"apiVersion": "v1", "kind": "Endpoints", "name": name, "uid": eps["metadata"]["uid"],
                     "controller": True, "blockOwnerDeletion": True}
            for i, body in enumerate(desired):
                if i < len(existing):
                    live = existing[i]
                    if all(live.get(k) == v for k, v in body.items()) and live["metadata"].get("labels") == labels:
                        continue
                    updated = deep_copy(live)
                    updated.update(body)
                    updated["metadata"]["labels"] = labels
                    await self.client.update(self.slices_res, namespace, updated)
                else:
                    await self.client.create(self.slices_res, namespace, {
                        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": f"{name}-", "namespace": namespace, "labels": labels,
                                     "ownerReferences": [owner]}, **body})
        for extra in existing[len(desired):]:
            try:
                await self.client.delete(self.slices_res, namespace, extra["metadata"]["name"])
            except NotFound:
                pass
        return None
