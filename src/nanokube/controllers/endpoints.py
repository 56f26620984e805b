"""Endpoints and EndpointSlices from Services and their Pods.

For every Service with a selector, one ``Endpoints`` object of the same name and one or more
``EndpointSlice`` objects (``<service>-<random>``, at most 100 endpoints each, labelled
``kubernetes.io/service-name``) list the IPs of the Pods the selector matches: ready Pods as ready
addresses, others as not ready (or ready anyway with ``publishNotReadyAddresses``). Named target ports are
resolved per Pod from its container ports. Services without a selector are left alone: their Endpoints are
written by hand, as in Kubernetes.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from nanokube.api.errors import AlreadyExists, NotFound
from nanokube.api.labels import selector_from_set
from nanokube.api.objects import deep_copy
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller

log = logging.getLogger(__name__)
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_PER_SLICE = 100


def pod_ready(pod: JSON) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _resolve_port(pod: JSON, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        reg = client.registry
        self.services_res = reg.get("", "v1", "services")
        self.pods_res = reg.get("", "v1", "pods")
        self.endpoints_res = reg.get("", "v1", "endpoints")
        self.slices_res = reg.get("discovery.k8s.io", "v1", "endpointslices")
        assert self.services_res and self.pods_res and self.endpoints_res and self.slices_res
        self.services = self.informer(Informer(client, self.services_res))
        self.pods = self.informer(Informer(client, self.pods_res))
        self.slices = self.informer(Informer(client, self.slices_res,
                                             label_selector=f"endpointslice.kubernetes.io/managed-by={MANAGED_BY}"))
        self.services.add_handler(lambda kind, obj, old: self.queue.add(_key(obj)))
        self.pods.add_handler(self._on_pod)
        self.slices.add_handler(self._on_slice)

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        namespace = pod["metadata"].get("namespace", "")
        for labels in (pod["metadata"].get("labels") or {}, (old or {}).get("metadata", {}).get("labels") or {}):
            for svc in self.services.items():
                if svc["metadata"].get("namespace") != namespace:
                    continue
                selector = (svc.get("spec") or {}).get("selector")
                if selector and selector_from_set(selector).matches(labels):
                    self.queue.add(_key(svc))

    def _on_slice(self, kind: str, obj: JSON, old: JSON | None) -> None:
        service = (obj["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if service:
            self.queue.add(f"{obj['metadata']['namespace']}/{service}")

    async def sync(self, key: Hashable) -> float | None:
        namespace = str(key).split("/", 1)[0]
        svc = self.services.get(str(key))
        if svc is None or svc["metadata"].get("deletionTimestamp"):
            return None  # the garbage collector removes slices owned by a deleted Service
        spec = svc.get("spec") or {}
        selector = spec.get("selector")
        if not selector:
            return None
        matcher = selector_from_set(selector)
        pods = [p for p in self.pods.items()
                if p["metadata"].get("namespace") == namespace and matcher.matches(p["metadata"].get("labels") or {})
                and (p.get("status") or {}).get("podIP")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        pods.sort(key=lambda p: p["metadata"]["name"])
        await self._write_endpoints(svc, pods)
        await self._write_slices(svc, pods)
        return None

    # -- core/v1 Endpoints -------------------------------------------------------------------------------
    async def _write_endpoints(self, svc: JSON, pods: list[JSON]) -> None:
        spec = svc.get("spec") or {}
        publish_all = bool(spec.get("publishNotReadyAddresses"))
        subsets: dict[tuple[tuple[Any, ...], ...], dict[str, list[JSON]]] = {}
        for pod in pods:
            ports = []
            for port in spec.get("ports") or []:
                number = _resolve_port(pod, port.get("targetPort", port.get("port")))
                if number is None:
                    continue
                entry = {"port": number, "protocol": port.get("protocol", "TCP")}
                if port.get("name"):
                    entry["name"] = port["name"]
                ports.append(entry)
            address: JSON = {"ip": pod["status"]["podIP"],
                             "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"],
                                           "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}
            if pod["spec"].get("nodeName"):
                address["nodeName"] = pod["spec"]["nodeName"]
            if _hostname(pod, svc):
                address["hostname"] = _hostname(pod, svc)
            group = subsets.setdefault(tuple(tuple(sorted(p.items())) for p in ports), {"ports": ports})
            ready = (publish_all or pod_ready(pod)) and not pod["metadata"].get("deletionTimestamp")
            group.setdefault("addresses" if ready else "notReadyAddresses", []).append(address)
        body: JSON = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": svc["metadata"]["name"], "namespace": svc["metadata"]["namespace"],
                             "labels": dict(svc["metadata"].get("labels") or {})},
                "subsets": [s for s in subsets.values() if s.get("addresses") or s.get("notReadyAddresses")]}
        if not body["subsets"]:
            body.pop("subsets")
        assert self.endpoints_res is not None
        try:
            live = await self.client.get(self.endpoints_res, svc["metadata"]["namespace"], svc["metadata"]["name"])
        except NotFound:
            try:
                await self.client.create(self.endpoints_res, svc["metadata"]["namespace"], body)
            except AlreadyExists:
                pass
            return
        if live.get("subsets") == body.get("subsets") and live["metadata"].get("labels") == body["metadata"]["labels"]:
            return
        updated = deep_copy(live)
        updated["metadata"]["labels"] = body["metadata"]["labels"]
        if "subsets" in body:
            updated["subsets"] = body["subsets"]
        else:
            updated.pop("subsets", None)
        await self.client.update(self.endpoints_res, svc["metadata"]["namespace"], updated)

    # -- discovery.k8s.io/v1 EndpointSlices -------------------------------------------------------------
    async def _write_slices(self, svc: JSON, pods: list[JSON]) -> None:
        spec = svc.get("spec") or {}
        namespace = svc["metadata"]["namespace"]
        publish_all = bool(spec.get("publishNotReadyAddresses"))
        ports = []
        for port in spec.get("ports") or []:
            entry: JSON = {"port": None, "protocol": port.get("protocol", "TCP"), "name": port.get("name", "")}
            ports.append((entry, port.get("targetPort", port.get("port"))))
        endpoints = []
        slice_ports: list[JSON] | None = None
        for pod in pods:
            resolved = []
            for entry, target in ports:
                number = _resolve_port(pod, target)
                if number is not None:
                    resolved.append({**entry, "port": number})
            if slice_ports is None:
                slice_ports = resolved
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            ready = pod_ready(pod)
            endpoint: JSON = {"addresses": [pod["status"]["podIP"]],
                              "conditions": {"ready": (publish_all or ready) and not terminating,
                                             "serving": ready, "terminating": terminating},
                              "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod["metadata"]["name"],
                                            "uid": pod["metadata"]["uid"]}}
            if pod["spec"].get("nodeName"):
                endpoint["nodeName"] = pod["spec"]["nodeName"]
            if _hostname(pod, svc):
                endpoint["hostname"] = _hostname(pod, svc)
            endpoints.append(endpoint)
        chunks = [endpoints[i:i + MAX_PER_SLICE] for i in range(0, len(endpoints), MAX_PER_SLICE)] or [[]]
        existing = sorted((s for s in self.slices.items()
                           if s["metadata"].get("namespace") == namespace
                           and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
                           == svc["metadata"]["name"]), key=lambda s: s["metadata"]["name"])
        labels = {**(svc["metadata"].get("labels") or {}), "kubernetes.io/service-name": svc["metadata"]["name"],
                  "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
        owner = {"apiVersion": "v1", "kind": "Service", "name": svc["metadata"]["name"],
                 "uid": svc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        assert self.slices_res is not None
        for i, chunk in enumerate(chunks):
            desired = {"addressType": "IPv4", "endpoints": chunk, "ports": slice_ports or [
                {"name": entry["name"], "protocol": entry["protocol"]} for entry, _ in ports]}
            if i < len(existing):
                live = existing[i]
                if all(live.get(k) == v for k, v in desired.items()) and live["metadata"].get("labels") == labels:
                    continue
                updated = deep_copy(live)
                updated.update(desired)
                updated["metadata"]["labels"] = labels
                await self.client.update(self.slices_res, namespace, updated)
            else:
                body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": f"{svc['metadata']['name']}-", "namespace": namespace,
                                     "labels": labels, "ownerReferences": [owner]}, **desired}
                await self.client.create(self.slices_res, namespace, body)
        for extra in existing[len(chunks):]:
            try:
                await self.client.delete(self.slices_res, namespace, extra["metadata"]["name"])
            except NotFound:
                pass


def _hostname(pod: JSON, svc: JSON) -> str:
    """The Pod's DNS hostname within this Service: set only when its ``spec.subdomain`` names the Service
    (StatefulSet Pods and hand-made ``hostname``/``subdomain`` Pods), so cluster DNS answers
    ``<hostname>.<service>.<namespace>.svc``."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        return str(spec["hostname"])
    return ""


def _key(obj: JSON) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
