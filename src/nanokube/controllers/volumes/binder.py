"""The PersistentVolume controller (kube's ``persistentvolume-binder``): claims meet volumes.

Keys are ``("claim", "ns/name")`` and ``("volume", name)``. A claim without ``pv.kubernetes.io/bind-completed``
is unbound: it gets the best matching Available volume (``matching.find_best_match``); failing that, a claim
with no class at all gets the default StorageClass (the retroactive assignment kube does since 1.28, standing in
for the DefaultStorageClass admission plugin nanokube's API server does not run); a WaitForFirstConsumer claim
waits (event ``WaitForFirstConsumer``) until the scheduler writes ``volume.kubernetes.io/selected-node``; a
claim with a class is handed to its provisioner through the ``volume.kubernetes.io/storage-provisioner``
annotation (event ``ExternalProvisioning``), which then creates a volume pre-bound to it. Binding writes the
volume (``claimRef``), its phase, the claim (``volumeName``, annotations) and its status, in kube's order.

The volume side lives in ``reclaim.py``: it keeps phases true and releases a volume whose claim is gone. Unbound
claims are looked at again every ``resync_period`` seconds, as kube's periodic resync does. One worker keeps two
claims from racing for one volume; a stale cache only costs a Conflict and a retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import cast

from nanokube.api.errors import ApiError
from nanokube.api.objects import deep_copy
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer
from nanokube.client.interface import Client

from ..base import Controller
from . import reclaim
from .common import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    JSON,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    ClaimUsers,
    VolumeSettings,
    annotations_of,
    claim_class,
    claim_has_class,
    claim_ref,
    is_bound_to,
    is_delay_binding,
    key_of,
    meta,
    phase,
    pod_terminated,
    spec,
)
from .matching import find_best_match, unsatisfied_because
from .storageclass import default_class, ensure_default_storage_class

log = logging.getLogger(__name__)
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
WAITING = "waiting for first consumer to be created before binding"


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"
    workers = 1

    def __init__(self, client: Client, settings: VolumeSettings | None = None) -> None:
        super().__init__(client)
        self.settings = settings or VolumeSettings()
        reg = client.registry
        pvs, pvcs = reg.get("", "v1", "persistentvolumes"), reg.get("", "v1", "persistentvolumeclaims")
        classes, pods = reg.get("storage.k8s.io", "v1", "storageclasses"), reg.get("", "v1", "pods")
        assert pvs is not None and pvcs is not None and classes is not None and pods is not None
        self.pvs, self.pvcs = pvs, pvcs
        self.volumes = self.informer(Informer(client, pvs))
        self.claims = self.informer(Informer(client, pvcs))
        self.classes = self.informer(Informer(client, classes))
        self.pods = self.informer(Informer(client, pods))
        self.users = ClaimUsers()
        self.recorder = EventRecorder(client, "persistentvolume-controller")
        self.claims.add_handler(self._on_claim)
        self.volumes.add_handler(self._on_volume)
        self.classes.add_handler(lambda kind, obj, old: self._enqueue_unbound_claims())
        self.pods.add_handler(self._on_pod)

    async def run(self, *, stop: asyncio.Event) -> None:
        ensure = asyncio.create_task(self._ensure_class(stop), name=f"{self.name}-storageclass")
        try:
            await super().run(stop=stop)
        finally:
            ensure.cancel()

    async def _ensure_class(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                await ensure_default_storage_class(self.client, self.settings)
                return
            except ApiError as err:
                log.warning("could not create the default StorageClass: %s; retrying", err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- events ---------------------------------------------------------------------------------------
    def _on_claim(self, kind: str, pvc: JSON, old: JSON | None) -> None:
        if kind != "DELETED":
            self.queue.add(("claim", key_of(pvc)))
            return
        # A deleted claim releases its volume.
        if spec(pvc).get("volumeName"):
            self.queue.add(("volume", str(spec(pvc)["volumeName"])))
        uid = meta(pvc).get("uid")
        for pv in self.volumes.items():
            if uid and (spec(pv).get("claimRef") or {}).get("uid") == uid:
                self.queue.add(("volume", meta(pv)["name"]))

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        self.users.update(kind, pod)

    def _on_volume(self, kind: str, pv: JSON, old: JSON | None) -> None:
        self.queue.add(("volume", meta(pv)["name"]))
        ref = spec(pv).get("claimRef")
        if isinstance(ref, dict) and ref.get("name"):
            self.queue.add(("claim", f"{ref.get('namespace', '')}/{ref['name']}"))
        elif kind != "DELETED" and phase(pv) == "Available":
            self._enqueue_unbound_claims()

    def _enqueue_unbound_claims(self) -> None:
        for pvc in self.claims.items():
            if BIND_COMPLETED not in annotations_of(pvc):
                self.queue.add(("claim", key_of(pvc)))

    async def sync(self, key: Hashable) -> float | None:
        kind, name = cast(tuple[str, str], key)
        if kind == "volume":
            await reclaim.sync_volume(self, str(name))
            return None
        pvc = self.claims.get(str(name))
        if pvc is None:
            return None
        if BIND_COMPLETED in annotations_of(pvc):
            await self._sync_bound(pvc)
            return None
        await self._sync_unbound(pvc)
        return self.settings.resync_period

    # -- unbound claims ---------------------------------------------------------------------------------
    async def _sync_unbound(self, pvc: JSON) -> None:
        wanted = spec(pvc).get("volumeName")
        if wanted:
            await self._sync_prebound(pvc, str(wanted))
            return
        classes = {meta(c)["name"]: c for c in self.classes.items()}
        delay = is_delay_binding(pvc, classes)
        pv = find_best_match(pvc, self.volumes.items(), delay)
        if pv is not None:
            await self.bind(pv, pvc)
            return
        if await self._assign_default_class(pvc):
            return
        if delay and not annotations_of(pvc).get(SELECTED_NODE):
            await self._emit_waiting(pvc)
        elif claim_class(pvc):
            await self._provision(pvc, classes.get(claim_class(pvc)))
            return
        else:
            await self.recorder.event(pvc, "Normal", "FailedBinding", NO_CLASS)
        await self.claim_status(pvc, "Pending", None)

    async def _sync_prebound(self, pvc: JSON, wanted: str) -> None:
        """The user named a volume in ``spec.volumeName``."""
        pv = self.volumes.get(wanted)
        if pv is None:
            await self.claim_status(pvc, "Pending", None)
            return
        if not spec(pv).get("claimRef"):
            why = unsatisfied_because(pv, pvc)
            if not why:
                await self.bind(pv, pvc)
                return
            await self.recorder.event(pvc, "Warning", "VolumeMismatch", f'Cannot bind to requested volume "{wanted}": {why}')
            await self.claim_status(pvc, "Pending", None)
        elif is_bound_to(pv, pvc):
            await self.bind(pv, pvc)
        else:
            await self.recorder.event(pvc, "Warning", "FailedBinding", f'volume "{wanted}" already bound to a different claim.')
            if BOUND_BY_CONTROLLER in annotations_of(pvc):
                raise RuntimeError(f"invalid binding of claim {key_of(pvc)} to volume {wanted}: volume already claimed")
            await self.claim_status(pvc, "Pending", None)

    async def _assign_default_class(self, pvc: JSON) -> bool:
        if claim_has_class(pvc):
            return False
        chosen = default_class(self.classes.items())
        if chosen is None:
            return False
        body = deep_copy(pvc)
        body.setdefault("spec", {})["storageClassName"] = meta(chosen)["name"]
        await self.client.update(self.pvcs, meta(pvc)["namespace"], body)
        log.info("claim %s gets the default StorageClass %s", key_of(pvc), meta(chosen)["name"])
        return True

    async def _emit_waiting(self, pvc: JSON) -> None:
        waiting = []
        for pod_key in self.users.pods(key_of(pvc)):
            pod = self.pods.get(pod_key)
            if pod is not None and not pod_terminated(pod) and not spec(pod).get("nodeName"):
                waiting.append(str(meta(pod)["name"]))
        if not waiting:
            await self.recorder.event(pvc, "Normal", "WaitForFirstConsumer", WAITING)
        elif len(waiting) == 1:
            await self.recorder.event(pvc, "Normal", "WaitForPodScheduled", f"waiting for pod {waiting[0]} to be scheduled")
        else:
            await self.recorder.event(pvc, "Normal", "WaitForPodScheduled",
                                      f"waiting for pods {','.join(waiting)} to be scheduled")

    async def _provision(self, pvc: JSON, storage_class: JSON | None) -> None:
        """``provisionClaim`` for external provisioners: name the provisioner on the claim and wait for it."""
        class_name = claim_class(pvc)
        if storage_class is None:
            await self.recorder.event(pvc, "Warning", "ProvisioningFailed",
                                      f'storageclass.storage.k8s.io "{class_name}" not found')
            return
        provisioner = str(storage_class.get("provisioner") or "")
        if provisioner.startswith("kubernetes.io/"):
            # In-tree plugins are not built in; kubernetes.io/no-provisioner means static volumes only.
            await self.recorder.event(pvc, "Warning", "ProvisioningFailed", f"no volume plugin matched name: {provisioner}")
            return
        notes = annotations_of(pvc)
        if notes.get(STORAGE_PROVISIONER) != provisioner or notes.get(BETA_STORAGE_PROVISIONER) != provisioner:
            body = deep_copy(pvc)
            body["metadata"].setdefault("annotations", {}).update(
                {STORAGE_PROVISIONER: provisioner, BETA_STORAGE_PROVISIONER: provisioner})
            pvc = await self.client.update(self.pvcs, meta(pvc)["namespace"], body)
        await self.recorder.event(pvc, "Normal", "ExternalProvisioning",
                                  f"Waiting for a volume to be created either by the external provisioner "
                                  f"'{provisioner}' or manually by the system administrator. If volume creation "
                                  "is delayed, please verify that the provisioner is running and correctly "
                                  "registered.")

    # -- bound claims -----------------------------------------------------------------------------------
    async def _sync_bound(self, pvc: JSON) -> None:
        name = spec(pvc).get("volumeName")
        if not name:
            await self._lost(pvc, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the "
                                               "volume is lost!")
            return
        pv = self.volumes.get(str(name))
        if pv is None:
            await self._lost(pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = spec(pv).get("claimRef")
        if not ref or ref.get("uid") == meta(pvc).get("uid"):
            await self.bind(pv, pvc)
            return
        await self._lost(pvc, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _lost(self, pvc: JSON, reason: str, message: str) -> None:
        if phase(pvc) == "Lost":
            return
        updated = await self.claim_status(pvc, "Lost", None)
        await self.recorder.event(updated, "Warning", reason, message)

    # -- writes -----------------------------------------------------------------------------------------
    async def bind(self, pv: JSON, pvc: JSON) -> None:
        """Volume first (claimRef, then phase), then the claim (volumeName, then status), as kube does."""
        pv = await self._bind_volume(pv, pvc)
        pv = await self.volume_phase(pv, "Bound")
        pvc = await self._bind_claim(pvc, pv)
        await self.claim_status(pvc, "Bound", pv)
        log.info("claim %s bound to volume %s", key_of(pvc), meta(pv)["name"])

    async def _bind_volume(self, pv: JSON, pvc: JSON) -> JSON:
        body = deep_copy(pv)
        dirty = False
        ref = spec(pv).get("claimRef") or {}
        m = meta(pvc)
        if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (m.get("name"), m.get("namespace"), m.get("uid")):
            body.setdefault("spec", {})["claimRef"] = claim_ref(pvc)
            dirty = True
        if not is_bound_to(pv, pvc) and BOUND_BY_CONTROLLER not in annotations_of(pv):
            body["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            dirty = True
        return await self.client.update(self.pvs, "", body) if dirty else pv

    async def _bind_claim(self, pvc: JSON, pv: JSON) -> JSON:
        body = deep_copy(pvc)
        notes = body["metadata"].setdefault("annotations", {})
        dirty = False
        if spec(pvc).get("volumeName") != meta(pv)["name"]:
            body.setdefault("spec", {})["volumeName"] = meta(pv)["name"]
            notes.setdefault(BOUND_BY_CONTROLLER, "yes")
            dirty = True
        if BIND_COMPLETED not in notes:
            notes[BIND_COMPLETED] = "yes"
            dirty = True
        return await self.client.update(self.pvcs, meta(pvc)["namespace"], body) if dirty else pvc

    async def claim_status(self, pvc: JSON, new_phase: str, pv: JSON | None) -> JSON:
        """``updateClaimStatus``: phase, plus the volume's access modes and (when becoming bound) capacity."""
        status = deep_copy(pvc.get("status") or {})
        status["phase"] = new_phase
        if pv is None:
            status.pop("accessModes", None)
            status.pop("capacity", None)
        else:
            status["accessModes"] = list(spec(pv).get("accessModes") or [])
            if phase(pvc) != new_phase:
                status["capacity"] = dict(spec(pv).get("capacity") or {})
        if status == (pvc.get("status") or {}):
            return pvc
        body = deep_copy(pvc)
        body["status"] = status
        return await self.client.update(self.pvcs, meta(pvc)["namespace"], body, subresource="status")

    async def volume_phase(self, pv: JSON, new_phase: str, message: str = "") -> JSON:
        return await reclaim.set_volume_phase(self.client, self.pvs, pv, new_phase, message)
