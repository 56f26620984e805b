"""The built-in local-path provisioner: rancher's local-path-provisioner as k3s ships it, in the control plane.

It acts on claims the PersistentVolume controller handed to it (``volume.kubernetes.io/storage-provisioner:
rancher.io/local-path``) that have no volume yet; for a WaitForFirstConsumer class it also waits for the
scheduler's ``volume.kubernetes.io/selected-node``. The volume it creates is named ``pvc-<claim uid>``, lives
at ``<storage_dir>/pvc-<uid>_<namespace>_<claim>`` on the selected node (hostPath ``DirectoryOrCreate``, or
``local`` when configured), is pinned there by required node affinity on ``kubernetes.io/hostname``, takes
size and access modes from the claim and the reclaim policy from the class, and is pre-bound to the claim
(``claimRef``) so the PersistentVolume controller binds the two.

When such a volume is Released with policy Delete, its directory is removed and the volume deleted. The
directory work is a hook (``VolumeSettings.create_dir``/``remove_dir``): this runs in the control plane, and
a simulated node's directory must not appear on this host; without hooks the path is only recorded.
Events and their wording are the external-provisioner library's: ``Provisioning``, ``ProvisioningSucceeded``,
``ProvisioningFailed``, ``VolumeFailedDelete``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable
from typing import cast

from nanokube.api.errors import AlreadyExists, NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer
from nanokube.client.interface import Client

from ..base import Controller
from .common import (
    BETA_STORAGE_PROVISIONER,
    HOSTNAME_LABEL,
    JSON,
    PROVISIONED_BY,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    WAIT_FOR_FIRST_CONSUMER,
    VolumeSettings,
    annotations_of,
    claim_class,
    claim_ref,
    key_of,
    meta,
    phase,
    spec,
)

log = logging.getLogger(__name__)
NODE_ANNOTATION = "local.path.provisioner/selected-node"
_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


class ProvisioningError(Exception):
    """The claim cannot be provisioned as it stands; reported once per attempt, not retried on a timer."""


class LocalPathProvisioner(Controller):
    name = "local-path-provisioner"

    def __init__(self, client: Client, settings: VolumeSettings | None = None) -> None:
        super().__init__(client)
        self.settings = settings or VolumeSettings()
        reg = client.registry
        pvs, pvcs = reg.get("", "v1", "persistentvolumes"), reg.get("", "v1", "persistentvolumeclaims")
        classes, nodes = reg.get("storage.k8s.io", "v1", "storageclasses"), reg.get("", "v1", "nodes")
        assert pvs is not None and pvcs is not None and classes is not None and nodes is not None
        self.pvs, self.pvcs, self.nodes_res = pvs, pvcs, nodes
        self.volumes = self.informer(Informer(client, pvs))
        self.claims = self.informer(Informer(client, pvcs))
        self.classes = self.informer(Informer(client, classes))
        self.nodes = self.informer(Informer(client, nodes))
        self.recorder = EventRecorder(client, f"{self.settings.provisioner_name}_nanokube")
        self.claims.add_handler(self._on_claim)
        self.volumes.add_handler(self._on_volume)

    def _on_claim(self, kind: str, pvc: JSON, old: JSON | None) -> None:
        if kind != "DELETED":
            self.queue.add(("claim", key_of(pvc)))

    def _on_volume(self, kind: str, pv: JSON, old: JSON | None) -> None:
        if kind != "DELETED":
            self.queue.add(("volume", key_of(pv)))

    async def sync(self, key: Hashable) -> float | None:
        kind, name = cast(tuple[str, str], key)
        if kind == "volume":
            pv = self.volumes.get(str(name))
            if pv is not None and self._should_delete(pv):
                await self.delete_volume(pv)
            return None
        pvc = self.claims.get(str(name))
        if pvc is not None and self._should_provision(pvc):
            return await self._provision(pvc)
        return None

    # -- provisioning -----------------------------------------------------------------------------------
    def _should_provision(self, pvc: JSON) -> bool:
        if spec(pvc).get("volumeName") or meta(pvc).get("deletionTimestamp"):
            return False
        notes = annotations_of(pvc)
        if notes.get(STORAGE_PROVISIONER, notes.get(BETA_STORAGE_PROVISIONER)) != self.settings.provisioner_name:
            return False
        storage_class = self.classes.get(claim_class(pvc))
        if (storage_class or {}).get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
            return bool(notes.get(SELECTED_NODE))
        return True

    async def _provision(self, pvc: JSON) -> float | None:
        """Create the claim's volume; a delay to look again when its class is missing (it may come back)."""
        pv_name = f"pvc-{meta(pvc)['uid']}"
        if self.volumes.get(pv_name) is not None:
            return None
        class_name = claim_class(pvc)
        storage_class = self.classes.get(class_name)
        if storage_class is None:
            log.warning("claim %s: storageclass.storage.k8s.io %r not found", key_of(pvc), class_name)
            return self.settings.resync_period
        if storage_class.get("provisioner") != self.settings.provisioner_name:
            return None
        usable, node = await self._selected_node(pvc)
        if not usable:
            return None
        await self.recorder.event(pvc, "Normal", "Provisioning",
                                  f'External provisioner is provisioning volume for claim "{key_of(pvc)}"')
        try:
            pv = self.volume_for(pvc, storage_class, pv_name, node)
        except ProvisioningError as err:
            await self._failed(pvc, class_name, str(err))
            return None
        node_name = meta(node or {}).get("name", "")
        path = _volume_path(pv)
        if self.settings.create_dir is not None:
            try:
                await self.settings.create_dir(node_name, path)
            except Exception as err:
                await self._failed(pvc, class_name, f"failed to create volume {pv_name}: {err}")
                raise
        log.info("creating volume %s at %s:%s", pv_name, node_name, path)
        try:
            await self.client.create(self.pvs, "", pv)
        except AlreadyExists:
            return None
        await self.recorder.event(pvc, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        return None

    async def _selected_node(self, pvc: JSON) -> tuple[bool, JSON | None]:
        """(usable, the selected Node or None when the claim names none). Not usable: the named node is gone,
        and the scheduler was asked to choose again by removing the annotation."""
        name = annotations_of(pvc).get(SELECTED_NODE)
        if not name:
            return True, None
        node = self.nodes.get(name)
        if node is not None:
            return True, node
        try:
            return True, await self.client.get(self.nodes_res, "", name)
        except NotFound:
            pass
        await self.recorder.event(pvc, "Warning", "ProvisioningFailed", f'nodes "{name}" not found')
        body = deep_copy(pvc)
        body["metadata"]["annotations"].pop(SELECTED_NODE, None)
        await self.client.update(self.pvcs, meta(pvc)["namespace"], body)
        return False, None

    async def _failed(self, pvc: JSON, class_name: str, message: str) -> None:
        await self.recorder.event(pvc, "Warning", "ProvisioningFailed",
                                  f'failed to provision volume with StorageClass "{class_name}": {message}')

    def volume_for(self, pvc: JSON, storage_class: JSON, pv_name: str, node: JSON | None) -> JSON:
        """The PersistentVolume for ``pvc`` on ``node``; ProvisioningError when local-path cannot serve it."""
        claim_spec = spec(pvc)
        if claim_spec.get("selector") is not None:
            raise ProvisioningError("claim.Spec.Selector is not supported")
        if any(mode not in _MODES for mode in claim_spec.get("accessModes") or []):
            raise ProvisioningError("NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes")
        if node is None:
            raise ProvisioningError("configuration error, no node was specified")
        node_name = str(meta(node)["name"])
        folder = f"{pv_name}_{meta(pvc)['namespace']}_{meta(pvc)['name']}"
        path = os.path.join(self.settings.storage_dir, folder)
        kind = (annotations_of(pvc).get("volumeType") or (meta(storage_class).get("annotations") or {})
                .get("defaultVolumeType") or self.settings.volume_type).lower()
        if kind == "local":
            source: JSON = {"local": {"path": path}}
        elif kind == "hostpath":
            source = {"hostPath": {"path": path, "type": "DirectoryOrCreate"}}
        else:
            raise ProvisioningError(f'failed to create persistent volume source: "{kind}" is not a recognised volume type')
        hostname = (meta(node).get("labels") or {}).get(HOSTNAME_LABEL, node_name)
        pv_spec: JSON = {
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "accessModes": list(claim_spec.get("accessModes") or []),
            "volumeMode": "Filesystem",
            "capacity": {"storage": ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage")},
            **source,
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
            "claimRef": claim_ref(pvc),
            "storageClassName": claim_class(pvc),
        }
        if storage_class.get("mountOptions"):
            pv_spec["mountOptions"] = list(storage_class["mountOptions"])
        return {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv_name, "annotations": {NODE_ANNOTATION: node_name,
                                                              PROVISIONED_BY: self.settings.provisioner_name}},
                "spec": pv_spec}

    # -- deletion ---------------------------------------------------------------------------------------
    def _should_delete(self, pv: JSON) -> bool:
        return (annotations_of(pv).get(PROVISIONED_BY) == self.settings.provisioner_name and phase(pv) == "Released"
                and spec(pv).get("persistentVolumeReclaimPolicy") == "Delete"
                and not meta(pv).get("deletionTimestamp"))

    async def delete_volume(self, pv: JSON) -> None:
        name = str(meta(pv)["name"])
        path, node = _volume_path(pv), _volume_node(pv)
        if self.settings.remove_dir is not None and path and await self._node_exists(node):
            try:
                await self.settings.remove_dir(node, path)
            except Exception as err:
                await self.recorder.event(pv, "Warning", "VolumeFailedDelete", f"failed to delete volume {name}: {err}")
                raise
        log.info("deleting volume %s at %s:%s", name, node, path)
        try:
            await self.client.delete(self.pvs, "", name)
        except NotFound:
            pass

    async def _node_exists(self, node: str) -> bool:
        """local-path skips the cleanup of a volume whose node is gone (nothing is left to clean)."""
        if not node or self.nodes.get(node) is not None:
            return bool(node)
        try:
            await self.client.get(self.nodes_res, "", node)
        except NotFound:
            return False
        return True


def _volume_path(pv: JSON) -> str:
    source = spec(pv).get("hostPath") or spec(pv).get("local") or {}
    return str(source.get("path") or "")


def _volume_node(pv: JSON) -> str:
    """The node a local-path volume lives on: our annotation, else its node affinity's hostname value."""
    node = annotations_of(pv).get(NODE_ANNOTATION)
    if node:
        return node
    required = (spec(pv).get("nodeAffinity") or {}).get("required") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("operator") == "In" and len(expr.get("values") or []) == 1:
                return str(expr["values"][0])
    return ""
