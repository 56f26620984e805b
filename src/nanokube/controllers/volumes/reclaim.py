"""The volume side of the PersistentVolume controller (kube's ``syncVolume`` and ``reclaimVolume``).

A volume without ``claimRef`` (or pre-bound by name only) is Available. One whose claim is gone (or was
recreated with another uid) becomes Released, and its reclaim policy runs: Retain keeps it; Delete leaves a
volume its external provisioner made (``pv.kubernetes.io/provisioned-by``) to that provisioner, and marks any
other Failed, as kube does when no deleter plugin exists. A claim missing from the cache is looked up live
before anything is released: a just-provisioned volume can be seen before its claim.

A volume that the controller bound to a claim which then took another volume is unbound again; a
dynamically provisioned Delete volume in that position is released instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nanokube.api.errors import NotFound
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Resource
from nanokube.client.interface import Client
from nanokube.util.timeutil import rfc3339

from .common import BOUND_BY_CONTROLLER, JSON, PROVISIONED_BY, annotations_of, meta, phase, spec
from .matching import volume_mode_mismatch

if TYPE_CHECKING:
    from .binder import PersistentVolumeController

_DONE = ("Released", "Failed")


async def set_volume_phase(client: Client, pvs: Resource, pv: JSON, new_phase: str, message: str = "") -> JSON:
    """``updateVolumePhase``: a status write when the phase changes (with ``lastPhaseTransitionTime``)."""
    if phase(pv) == new_phase:
        return pv
    body = deep_copy(pv)
    status = body.setdefault("status", {})
    status["phase"] = new_phase
    if message:
        status["message"] = message
    else:
        status.pop("message", None)
    status["lastPhaseTransitionTime"] = rfc3339()
    return await client.update(pvs, "", body, subresource="status")


async def sync_volume(ctrl: PersistentVolumeController, name: str) -> None:
    pv = ctrl.volumes.get(name)
    if pv is None:
        return
    ref = spec(pv).get("claimRef")
    if not isinstance(ref, dict) or not ref.get("uid"):
        # Unused, or reserved for a claim by name: the claim's sync finishes the binding.
        await ctrl.volume_phase(pv, "Available")
        return
    claim = await _claim_of(ctrl, pv, ref)
    if claim is None:
        if phase(pv) not in _DONE:
            pv = await ctrl.volume_phase(pv, "Released")
        await reclaim(ctrl, pv)
        return
    bound_to = spec(claim).get("volumeName")
    if not bound_to:
        if volume_mode_mismatch(claim, pv):
            await ctrl.recorder.event(pv, "Warning", "VolumeMismatch",
                                      "Cannot bind PersistentVolume to requested PersistentVolumeClaim "
                                      f'"{meta(claim)["name"]}" due to incompatible volumeMode.')
            await ctrl.recorder.event(claim, "Warning", "VolumeMismatch",
                                      f'Cannot bind PersistentVolume "{name}" to requested PersistentVolumeClaim '
                                      "due to incompatible volumeMode.")
            return
        ctrl.queue.add(("claim", f"{meta(claim)['namespace']}/{meta(claim)['name']}"))
        return
    if bound_to == name:
        await ctrl.volume_phase(pv, "Bound")
        return
    # The claim took another volume.
    if PROVISIONED_BY in annotations_of(pv) and spec(pv).get("persistentVolumeReclaimPolicy") == "Delete":
        if phase(pv) not in _DONE:
            pv = await ctrl.volume_phase(pv, "Released")
        await reclaim(ctrl, pv)
        return
    await unbind(ctrl, pv)


async def _claim_of(ctrl: PersistentVolumeController, pv: JSON, ref: JSON) -> JSON | None:
    """The claim the volume is bound to, or None when it is gone (or is a new claim with the same name)."""
    namespace, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
    claim = ctrl.claims.get(f"{namespace}/{name}")
    if claim is None and phase(pv) in _DONE:
        return None
    if claim is None or meta(claim).get("uid") != ref.get("uid"):
        try:
            claim = await ctrl.client.get(ctrl.pvcs, namespace, name)
        except NotFound:
            return None
    return claim if meta(claim).get("uid") == ref.get("uid") else None


async def unbind(ctrl: PersistentVolumeController, pv: JSON) -> None:
    """``unbindVolume``: forget a binding the controller made; keep a user's pre-binding (minus the uid)."""
    body = deep_copy(pv)
    notes = body["metadata"].get("annotations") or {}
    if BOUND_BY_CONTROLLER in notes:
        body["spec"].pop("claimRef", None)
        notes.pop(BOUND_BY_CONTROLLER)
        if not notes:
            body["metadata"].pop("annotations", None)
    else:
        body["spec"]["claimRef"].pop("uid", None)
    updated = await ctrl.client.update(ctrl.pvs, "", body)
    await ctrl.volume_phase(updated, "Available")


async def reclaim(ctrl: PersistentVolumeController, pv: JSON) -> None:
    policy = spec(pv).get("persistentVolumeReclaimPolicy")
    if policy == "Retain":
        return
    if policy == "Delete":
        provisioner = annotations_of(pv).get(PROVISIONED_BY, "")
        if provisioner and not provisioner.startswith("kubernetes.io/"):
            return  # an external provisioner deletes what it made
        await _fail(ctrl, pv, "VolumeFailedDelete", f'error getting deleter volume plugin for volume "{meta(pv)["name"]}":'
                                                    " no deletable volume plugin matched")
    elif policy == "Recycle":
        await _fail(ctrl, pv, "VolumeFailedRecycle", "No recycler plugin found for the volume!")
    else:
        await _fail(ctrl, pv, "VolumeUnknownReclaimPolicy", "Volume has unrecognized PersistentVolumeReclaimPolicy")


async def _fail(ctrl: PersistentVolumeController, pv: JSON, reason: str, message: str) -> None:
    """``updateVolumePhaseWithEvent``: Failed, with the event only when the phase changes."""
    if phase(pv) == "Failed":
        return
    updated = await ctrl.volume_phase(pv, "Failed", message)
    await ctrl.recorder.event(updated, "Warning", reason, message)
