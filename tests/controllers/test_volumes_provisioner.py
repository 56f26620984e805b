"""The local-path provisioner with the PersistentVolume controller: WaitForFirstConsumer claims wait for the
scheduler's node choice, get a volume on that node, and lose it again (directory included) with the claim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from harness import eventually

from nanokube.api.errors import NotFound
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.volumes import VolumeSettings, host_directory_hooks, volume_controllers

JSON = dict[str, Any]
SELECTED = "volume.kubernetes.io/selected-node"


class Recorder:
    """Directory hooks that only remember what they were asked to do."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []
        self.removed: list[tuple[str, str]] = []

    async def create(self, node: str, path: str) -> None:
        self.created.append((node, path))

    async def remove(self, node: str, path: str) -> None:
        self.removed.append((node, path))


@asynccontextmanager
async def storage(settings: VolumeSettings) -> AsyncIterator[Api]:
    async with InProcessCluster() as cluster:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop=stop)) for c in volume_controllers(cluster.client, settings)]
        try:
            yield Api(cluster)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


class Api:
    def __init__(self, cluster: InProcessCluster) -> None:
        self.c = cluster.client
        self.pvs = cluster.resource("", "v1", "persistentvolumes")
        self.pvcs = cluster.resource("", "v1", "persistentvolumeclaims")
        self.nodes = cluster.resource("", "v1", "nodes")
        self.events = cluster.resource("", "v1", "events")
        self.classes = cluster.resource("storage.k8s.io", "v1", "storageclasses")

    async def claim(self, name: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = None) -> JSON:
        spec: JSON = {"accessModes": list(modes), "resources": {"requests": {"storage": "3Gi"}}}
        if cls is not None:
            spec["storageClassName"] = cls
        return await self.c.create(self.pvcs, "default", {"metadata": {"name": name}, "spec": spec})

    async def select_node(self, claim: str, node: str) -> None:
        await self.c.patch(self.pvcs, "default", claim, {"metadata": {"annotations": {SELECTED: node}}})

    async def node(self, name: str, hostname: str = "") -> None:
        labels = {"kubernetes.io/hostname": hostname} if hostname else {}
        await self.c.create(self.nodes, "", {"metadata": {"name": name, "labels": labels}})

    async def bound(self, name: str) -> JSON:
        pvc = await self.c.get(self.pvcs, "default", name)
        return pvc if pvc["status"].get("phase") == "Bound" else {}

    async def event(self, name: str, reason: str) -> str:
        for namespace in ("default",):
            listed = await self.c.list(self.events, namespace)
            for e in listed.items:
                if e["involvedObject"].get("name") == name and e["reason"] == reason:
                    return str(e["message"])
        return ""

    async def gone(self, name: str) -> bool:
        try:
            await self.c.get(self.pvs, "", name)
        except NotFound:
            return True
        return False


async def test_a_wait_for_first_consumer_claim_gets_a_volume_on_the_selected_node() -> None:
    hooks = Recorder()
    settings = VolumeSettings(storage_dir="/srv/storage", create_dir=hooks.create, remove_dir=hooks.remove)
    async with storage(settings) as api:
        await api.node("node-a", hostname="host-a")
        pvc = await api.claim("data")
        uid = pvc["metadata"]["uid"]
        assert await eventually(lambda: api.event("data", "WaitForFirstConsumer"))
        assert (await api.c.list(api.pvs)).items == []
        assert hooks.created == []

        await api.select_node("data", "node-a")
        bound = await eventually(lambda: api.bound("data"))
        name = f"pvc-{uid}"
        assert bound["spec"]["volumeName"] == name
        assert bound["spec"]["storageClassName"] == "local-path"
        assert bound["status"]["capacity"] == {"storage": "3Gi"}
        notes = bound["metadata"]["annotations"]
        assert notes["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
        assert notes["volume.beta.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
        pv = await api.c.get(api.pvs, "", name)
        path = f"/srv/storage/{name}_default_data"
        assert pv["spec"]["hostPath"] == {"path": path, "type": "DirectoryOrCreate"}
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["host-a"]}]}]
        assert pv["spec"]["capacity"] == {"storage": "3Gi"}
        assert pv["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert pv["spec"]["storageClassName"] == "local-path"
        assert pv["spec"]["claimRef"]["uid"] == uid
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
        assert hooks.created == [("node-a", path)]
        assert await eventually(lambda: api.event("data", "ExternalProvisioning"))
        assert await api.event("data", "Provisioning") == 'External provisioner is provisioning volume for claim "default/data"'
        assert await api.event("data", "ProvisioningSucceeded") == f"Successfully provisioned volume {name}"

        # Delete reclaim: the claim goes, the volume is released, its directory removed, the volume deleted.
        await api.c.delete(api.pvcs, "default", "data")
        await eventually(lambda: api.gone(name))
        assert hooks.removed == [("node-a", path)]


async def test_retain_class_keeps_the_provisioned_volume() -> None:
    hooks = Recorder()
    async with storage(VolumeSettings(create_dir=hooks.create, remove_dir=hooks.remove)) as api:
        await api.c.create(api.classes, "", {"metadata": {"name": "keep"}, "provisioner": "rancher.io/local-path",
                                             "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer",
                                             "mountOptions": ["noatime"]})
        await api.node("node-b")
        pvc = await api.claim("kept", cls="keep")
        await api.select_node("kept", "node-b")
        await eventually(lambda: api.bound("kept"))
        name = f"pvc-{pvc['metadata']['uid']}"
        pv = await api.c.get(api.pvs, "", name)
        # Without a hostname label, the node's name is the affinity value.
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [
            "node-b"]
        assert pv["spec"]["mountOptions"] == ["noatime"]
        assert pv["spec"]["hostPath"]["path"].startswith("/var/lib/nanokube/storage/pvc-")
        await api.c.delete(api.pvcs, "default", "kept")

        async def released() -> bool:
            got = await api.c.get(api.pvs, "", name)
            return got["status"]["phase"] == "Released"

        await eventually(released)
        # Another claim going through shows the controllers have moved on; the retained volume is still there.
        await api.claim("later", cls="keep")
        await api.select_node("later", "node-b")
        await eventually(lambda: api.bound("later"))
        assert not await api.gone(name)
        assert hooks.removed == []


async def test_claims_local_path_cannot_serve_fail_with_the_provisioners_words() -> None:
    async with storage(VolumeSettings()) as api:
        await api.node("node-a")
        await api.claim("shared", modes=("ReadWriteMany",))
        await api.select_node("shared", "node-a")
        message = await eventually(lambda: api.event("shared", "ProvisioningFailed"))
        assert message == ('failed to provision volume with StorageClass "local-path": NodePath only supports '
                           "ReadWriteOnce and ReadWriteOncePod (1.22+) access modes")

        # An Immediate class with this provisioner has no node to put the volume on.
        await api.c.create(api.classes, "", {"metadata": {"name": "now"}, "provisioner": "rancher.io/local-path",
                                             "volumeBindingMode": "Immediate"})
        await api.claim("eager", cls="now")
        message = await eventually(lambda: api.event("eager", "ProvisioningFailed"))
        assert message.endswith(": configuration error, no node was specified")

        # A selected node that does not exist goes back to the scheduler.
        await api.claim("lost", cls="local-path")
        await api.select_node("lost", "ghost")
        assert await eventually(lambda: api.event("lost", "ProvisioningFailed")) == 'nodes "ghost" not found'

        async def unselected() -> bool:
            pvc = await api.c.get(api.pvcs, "default", "lost")
            return SELECTED not in (pvc["metadata"].get("annotations") or {})

        await eventually(unselected)
        assert (await api.c.list(api.pvs)).items == []


async def test_host_directory_hooks_touch_only_the_local_node(tmp_path: Path) -> None:
    base = tmp_path / "storage"
    create, remove = host_directory_hooks("here", str(base))
    mine = base / "pvc-1_default_data"
    await create("here", str(mine))
    await create("elsewhere", str(base / "pvc-2_default_other"))
    assert mine.is_dir() and (mine.stat().st_mode & 0o777) == 0o777
    assert not (base / "pvc-2_default_other").exists()
    (mine / "file").write_text("data")
    with pytest.raises(ValueError):
        await remove("here", str(tmp_path))
    await remove("elsewhere", str(mine))
    assert mine.exists()
    await remove("here", str(mine))
    assert not mine.exists()
    await remove("here", str(mine))  # already gone: nothing to do
