"""Storage object in-use protection: the ``kubernetes.io/pvc-protection`` and ``kubernetes.io/pv-protection``
finalizers, as kube's pvc-protection and pv-protection controllers keep them.

Kube's admission plugin adds the finalizers at creation; nanokube's API server does not, so these controllers
add them to every claim and volume not being deleted (kube's controllers do that too, for objects that slipped
past admission). A claim being deleted keeps its finalizer while a scheduled Pod names it (a Pod not yet on a
node cannot start with it any more; a force-deleted Pod no longer counts for its ephemeral claims); the
informer's answer "unused" is confirmed by a live list before the finalizer goes. A volume being deleted keeps
its finalizer while it is Bound.
"""

from __future__ import annotations

from collections.abc import Hashable

from nanokube.api.errors import NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.informer import Informer
from nanokube.client.interface import Client

from ..base import Controller
from .common import (
    JSON,
    PV_PROTECTION,
    PVC_PROTECTION,
    ClaimUsers,
    key_of,
    meta,
    phase,
    pod_claim_names,
    spec,
)


def _finalizers(obj: JSON) -> list[str]:
    return list(meta(obj).get("finalizers") or [])


def needs_finalizer(obj: JSON, finalizer: str) -> bool:
    return not meta(obj).get("deletionTimestamp") and finalizer not in _finalizers(obj)


def deletion_candidate(obj: JSON, finalizer: str) -> bool:
    return bool(meta(obj).get("deletionTimestamp")) and finalizer in _finalizers(obj)


def _with_finalizer(obj: JSON, finalizer: str, present: bool) -> JSON:
    body = deep_copy(obj)
    finalizers = [f for f in _finalizers(obj) if f != finalizer] + ([finalizer] if present else [])
    if finalizers:
        body["metadata"]["finalizers"] = finalizers
    else:
        body["metadata"].pop("finalizers", None)
    return body


def pod_uses_claim(pod: JSON, claim: JSON) -> bool:
    """``podUsesPVC``: only a scheduled Pod counts; a shut-down one (deleted with grace 0) not for its ephemeral
    claims."""
    if not spec(pod).get("nodeName") or meta(pod).get("namespace") != meta(claim).get("namespace"):
        return False
    name = meta(claim).get("name")
    for volume in spec(pod).get("volumes") or []:
        source = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if isinstance(source, dict) and source.get("claimName") == name:
            return True
    shut_down = bool(meta(pod).get("deletionTimestamp")) and meta(pod).get("deletionGracePeriodSeconds") == 0
    return not shut_down and name in set(pod_claim_names(pod))


class PVCProtectionController(Controller):
    name = "pvc-protection"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        pvcs, pods = client.registry.get("", "v1", "persistentvolumeclaims"), client.registry.get("", "v1", "pods")
        assert pvcs is not None and pods is not None
        self.pvcs, self.pods_res = pvcs, pods
        self.claims = self.informer(Informer(client, pvcs))
        self.pods = self.informer(Informer(client, pods))
        self.users = ClaimUsers()
        self.claims.add_handler(self._on_claim)
        self.pods.add_handler(self._on_pod)

    def _on_claim(self, kind: str, pvc: JSON, old: JSON | None) -> None:
        if kind != "DELETED" and (needs_finalizer(pvc, PVC_PROTECTION) or deletion_candidate(pvc, PVC_PROTECTION)):
            self.queue.add(key_of(pvc))

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        claims = self.users.update(kind, pod)
        # Only a pod going away (or not holding its claims) can let a claim go.
        if kind == "DELETED" or phase(pod) in ("Succeeded", "Failed") or not spec(pod).get("nodeName"):
            for claim in claims:
                self.queue.add(claim)

    async def sync(self, key: Hashable) -> float | None:
        pvc = self.claims.get(str(key))
        if pvc is None:
            return None
        if needs_finalizer(pvc, PVC_PROTECTION):
            await self.client.update(self.pvcs, meta(pvc)["namespace"], _with_finalizer(pvc, PVC_PROTECTION, True))
        elif deletion_candidate(pvc, PVC_PROTECTION) and not await self._in_use(pvc):
            try:
                await self.client.update(self.pvcs, meta(pvc)["namespace"], _with_finalizer(pvc, PVC_PROTECTION, False))
            except NotFound:
                pass
        return None

    async def _in_use(self, pvc: JSON) -> bool:
        for pod_key in self.users.pods(key_of(pvc)):
            pod = self.pods.get(pod_key)
            if pod is not None and pod_uses_claim(pod, pvc):
                return True
        # The cache may not have the newest Pods yet: ask the API server before letting the claim go.
        live = await self.client.list(self.pods_res, meta(pvc)["namespace"])
        return any(pod_uses_claim(pod, pvc) for pod in live.items)


class PVProtectionController(Controller):
    name = "pv-protection"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        pvs = client.registry.get("", "v1", "persistentvolumes")
        assert pvs is not None
        self.pvs = pvs
        self.volumes = self.informer(Informer(client, pvs))
        self.volumes.add_handler(self._on_volume)

    def _on_volume(self, kind: str, pv: JSON, old: JSON | None) -> None:
        if kind != "DELETED" and (needs_finalizer(pv, PV_PROTECTION) or deletion_candidate(pv, PV_PROTECTION)):
            self.queue.add(key_of(pv))

    async def sync(self, key: Hashable) -> float | None:
        pv = self.volumes.get(str(key))
        if pv is None:
            return None
        if needs_finalizer(pv, PV_PROTECTION):
            await self.client.update(self.pvs, "", _with_finalizer(pv, PV_PROTECTION, True))
        elif deletion_candidate(pv, PV_PROTECTION) and phase(pv) != "Bound":
            try:
                await self.client.update(self.pvs, "", _with_finalizer(pv, PV_PROTECTION, False))
            except NotFound:
                pass
        return None
