"""VolumeBinding: a pod with claims goes where its volumes can be.

PreFilter: every claim must exist and not be going away (``persistentvolumeclaim "x" not found``); an unbound
claim whose StorageClass binds immediately means the pod waits for the volume controller ("pod has unbound
immediate PersistentVolumeClaims"); both are UnschedulableAndUnresolvable, as in kube. Filter: a bound
volume's ``spec.nodeAffinity`` must match the node ("node(s) had volume node affinity conflict"); an unbound
WaitForFirstConsumer claim is fine anywhere when its class provisions dynamically, and needs a matching
Available volume on the node when the class is ``kubernetes.io/no-provisioner`` ("node(s) didn't find available
persistent volumes to bind").

PreBind does what kube's volume binder does for unbound WaitForFirstConsumer claims: it writes the chosen node
into the claim's ``volume.kubernetes.io/selected-node`` annotation (a provisioner then creates the volume there),
or points a matching static volume's ``claimRef`` at the claim, and waits until the claims are Bound before the
pod itself is bound.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from ..framework import SKIP, Code, CycleState, FilterResult, Mask, PreFilterResult, Status
from ..handle import Handle
from ..podinfo import PodInfo
from ..resources import amount
from ..snapshot import Snapshot
from ..table import NodeInfo
from .nodeaffinity import term_matches

JSON = dict[str, Any]
CONFLICT = "node(s) had volume node affinity conflict"
NO_VOLUME = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


def claim_names(pod: PodInfo) -> list[str]:
    out = []
    for volume in pod.spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        claim = volume.get("persistentVolumeClaim")
        if isinstance(claim, dict) and claim.get("claimName"):
            out.append(str(claim["claimName"]))
        elif isinstance(volume.get("ephemeral"), dict):
            out.append(f"{pod.name}-{volume.get('name')}")
    return out


def volume_matches_node(pv: JSON, info: NodeInfo) -> bool:
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not isinstance(required, dict):
        return True
    return any(term_matches(t, info) for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict))


def _class_name(pvc: JSON) -> str:
    spec = pvc.get("spec") or {}
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    return str(spec.get("storageClassName") or annotations.get("volume.beta.kubernetes.io/storage-class") or "")


def _static_candidate(pv: JSON, pvc: JSON, class_name: str) -> bool:
    spec = pv.get("spec") or {}
    if (pv.get("status") or {}).get("phase", "Available") != "Available" or spec.get("storageClassName", "") != class_name:
        return False
    ref = spec.get("claimRef")
    meta = pvc.get("metadata") or {}
    if ref and (ref.get("name"), ref.get("namespace")) != (meta.get("name"), meta.get("namespace")):
        return False
    want = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0)
    have = (spec.get("capacity") or {}).get("storage", 0)
    modes = set((pvc.get("spec") or {}).get("accessModes") or [])
    return amount("storage", have) >= amount("storage", want) and modes <= set(spec.get("accessModes") or [])


class VolumeBinding:
    name = "VolumeBinding"

    def __init__(self, handle: Handle | None = None, *, bind_timeout: float = 600.0) -> None:
        self.handle = handle or Handle()
        self.bind_timeout = bind_timeout

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        names = claim_names(pod)
        if not names:
            return None, SKIP
        bound: list[JSON] = []
        delayed: list[tuple[JSON, JSON | None]] = []
        for name in names:
            pvc = self.handle.get("persistentvolumeclaims", pod.namespace, name)
            if pvc is None:
                return None, Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, f'persistentvolumeclaim "{name}" not found')
            if (pvc.get("metadata") or {}).get("deletionTimestamp"):
                return None, Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                                       f'persistentvolumeclaim "{name}" is being deleted')
            volume = (pvc.get("spec") or {}).get("volumeName")
            if volume:
                pv = self.handle.get("persistentvolumes", "", volume)
                if pv is None:
                    return None, Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                                           f'persistentvolume "{volume}" not found')
                bound.append(pv)
                continue
            storage_class = self.handle.get("storageclasses", "", _class_name(pvc))
            if (storage_class or {}).get("volumeBindingMode") != "WaitForFirstConsumer":
                return None, Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, UNBOUND_IMMEDIATE)
            delayed.append((pvc, storage_class))
        state.data[self.name] = (bound, delayed)
        return None, Status()

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        bound, delayed = state.data.get(self.name) or ([], [])
        conflict = np.zeros(snap.table.size, np.bool_)
        for pv in bound:
            meta = pv.get("metadata") or {}
            key = ("pv", meta.get("name"), meta.get("resourceVersion"))
            conflict |= ~snap.label_mask(key, lambda info, v=pv: volume_matches_node(v, info))  # type: ignore[misc]
        missing = np.zeros(snap.table.size, np.bool_)
        for pvc, storage_class in delayed:
            if (storage_class or {}).get("provisioner") == NO_PROVISIONER:
                missing |= ~self._static_rows(pvc, snap) & ~conflict
        failed = conflict | missing
        if not failed.any():
            return None
        return FilterResult(~failed, [(CONFLICT, conflict), (NO_VOLUME, missing)], True)

    def _static_rows(self, pvc: JSON, snap: Snapshot) -> Mask:
        class_name = _class_name(pvc)
        volumes = [pv for pv in self.handle.items("persistentvolumes") if _static_candidate(pv, pvc, class_name)]
        mask = np.zeros(snap.table.size, np.bool_)
        for info in snap.nodes():
            mask[info.row] = any(volume_matches_node(pv, info) for pv in volumes)
        return mask

    # -- binding --------------------------------------------------------------------------------------------

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        _, delayed = state.data.get(self.name) or ([], [])
        client = self.handle.client
        if not delayed or client is None:
            return Status()
        pvcs = client.registry.get("", "v1", "persistentvolumeclaims")
        pvs = client.registry.get("", "v1", "persistentvolumes")
        assert pvcs is not None and pvs is not None
        try:
            for pvc, storage_class in delayed:
                meta = pvc["metadata"]
                if (storage_class or {}).get("provisioner") == NO_PROVISIONER:
                    pv = self._pick_static(pvc, node)
                    if pv is None:
                        return Status.of(Code.UNSCHEDULABLE, NO_VOLUME)
                    ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta["namespace"],
                           "name": meta["name"], "uid": meta.get("uid")}
                    await client.patch(pvs, "", pv["metadata"]["name"], {"spec": {"claimRef": ref}})
                else:
                    await client.patch(pvcs, meta["namespace"], meta["name"],
                                       {"metadata": {"annotations": {SELECTED_NODE: node}}})
        except Exception as err:  # an API error: the binding cycle fails and the pod is retried
            return Status.error(f"binding volumes: {err}")
        return await self._wait_bound(pod, [pvc for pvc, _ in delayed])

    def _pick_static(self, pvc: JSON, node: str) -> JSON | None:
        info = NodeInfo(node, -1)
        target = self.handle.get("nodes", "", node)
        info.labels = dict(((target or {}).get("metadata") or {}).get("labels") or {})
        class_name = _class_name(pvc)
        candidates = [pv for pv in self.handle.items("persistentvolumes")
                      if _static_candidate(pv, pvc, class_name) and volume_matches_node(pv, info)]
        candidates.sort(key=lambda pv: amount("storage", ((pv.get("spec") or {}).get("capacity") or {}).get("storage", 0)))
        return candidates[0] if candidates else None

    async def _wait_bound(self, pod: PodInfo, claims: list[JSON]) -> Status:
        deadline = time.monotonic() + self.bind_timeout
        while True:
            pending = []
            for pvc in claims:
                live = self.handle.get("persistentvolumeclaims", pod.namespace, pvc["metadata"]["name"])
                if live is None:
                    return Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                                     f'persistentvolumeclaim "{pvc["metadata"]["name"]}" not found')
                if not (live.get("spec") or {}).get("volumeName"):
                    pending.append(pvc["metadata"]["name"])
            if not pending:
                return Status()
            if time.monotonic() >= deadline:
                return Status.error(f"binding volumes: context deadline exceeded waiting for {', '.join(pending)}")
            await asyncio.sleep(0.1)
