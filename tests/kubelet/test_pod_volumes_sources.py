"""downwardAPI, projected and persistentVolumeClaim volumes on disk, and a missing source holding a Pod in
ContainerCreating with a FailedMount event on a node agent until it appears."""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubelet_helpers import ValidatingClient, eventually, pod

from nanokube.client.events import EventRecorder
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.agent import AgentSettings, NodeAgent
from nanokube.kubelet.node import NodeConfig
from nanokube.kubelet.podfiles import PodFiles, PodFileSettings
from nanokube.kubelet.runtime.fake import ContainerPlan, FakeRuntime, annotation_plan
from nanokube.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
from nanokube.kubelet.sync import PodSyncer, SyncSettings
from nanokube.kubelet.volumes import VolumeManager, VolumeMountFailure

JSON = dict[str, Any]
POD: JSON = {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "labels": {"app": "web", "tier": "x"},
                          "annotations": {"note": 'say "hi"\nbye'}},
             "spec": {"containers": [{"name": "main", "resources": {"limits": {"memory": "64Mi"},
                                                                    "requests": {"cpu": "250m"}}}]}}


@pytest.fixture
async def cluster() -> AsyncIterator[InProcessCluster]:
    async with InProcessCluster() as c:
        await c.client.create(c.resource("", "v1", "configmaps"), "default",
                              {"metadata": {"name": "cm"}, "data": {"k": "v"}})
        await c.client.create(c.resource("", "v1", "secrets"), "default",
                              {"metadata": {"name": "sec"}, "data": {"pw": base64.b64encode(b"pw!").decode()}})
        yield c


def _with(volumes: list[JSON]) -> JSON:
    return {**POD, "spec": {**POD["spec"], "volumes": volumes}}


def _files(root: str) -> dict[str, str]:
    """What a container sees in the volume: every file through the top-level links, by relative path."""
    found: dict[str, str] = {}
    for directory, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith("..")]
        for name in names:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = path.read_text()
    return found


async def test_downward_api_files(cluster: InProcessCluster, tmp_path: Path) -> None:
    manager = VolumeManager(cluster.client, tmp_path, node_allocatable={"memory": "1Gi"})
    items = [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "meta/ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o600},
             {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
             {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
             {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory",
                                                  "divisor": "1Mi"}},
             {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "requests.cpu",
                                                  "divisor": "1m"}}]
    pod_ = _with([{"name": "d", "downwardAPI": {"items": items, "defaultMode": 0o444}}])
    mounts = await manager.mounts(pod_, {"volumeMounts": [{"name": "d", "mountPath": "/etc/podinfo"}]})
    assert mounts[0].readonly
    assert _files(mounts[0].host_path) == {"name": "p", "meta/ns": "default", "uid": "u1",
                                           "labels": 'app="web"\ntier="x"', "annotations": 'note="say \\"hi\\"\\nbye"',
                                           "mem": "64", "cpu": "250"}
    root = Path(mounts[0].host_path)
    assert (root / "meta/ns").stat().st_mode & 0o777 == 0o600 and (root / "uid").stat().st_mode & 0o777 == 0o444


async def test_projected_sources_share_one_directory(cluster: InProcessCluster, tmp_path: Path) -> None:
    manager = VolumeManager(cluster.client, tmp_path)
    sources = [{"configMap": {"name": "cm", "items": [{"key": "k", "path": "config/k"}]}},
               {"secret": {"name": "sec", "items": [{"key": "pw", "path": "pw", "mode": 0o400}]}},
               {"secret": {"name": "absent", "optional": True}},
               {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]
    pod_ = _with([{"name": "all", "projected": {"sources": sources, "defaultMode": 0o440}}])
    mounts = await manager.mounts(pod_, {"volumeMounts": [{"name": "all", "mountPath": "/all"}]})
    assert _files(mounts[0].host_path) == {"config/k": "v", "pw": "pw!", "name": "p"}
    root = Path(mounts[0].host_path)
    assert (root / "pw").stat().st_mode & 0o777 == 0o400 and (root / "name").stat().st_mode & 0o777 == 0o440
    missing = _with([{"name": "all", "projected": {"sources": [{"secret": {"name": "absent"}}]}}])
    with pytest.raises(VolumeMountFailure, match='volume "all" : secret "absent" not found'):
        await manager.mounts(missing, {})
    token = _with([{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}])
    with pytest.raises(VolumeMountFailure, match='volume "t" : failed to fetch token: serviceaccounts "default" not f'):
        await manager.mounts(token, {})


async def _claim(c: InProcessCluster, name: str, *, bound_to: str = "") -> JSON:
    pvcs = c.resource("", "v1", "persistentvolumeclaims")
    body = {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                 "resources": {"requests": {"storage": "1Gi"}},
                                                 **({"volumeName": bound_to} if bound_to else {})}}
    claim = await c.client.create(pvcs, "default", body)
    if bound_to:
        claim["status"] = {"phase": "Bound"}
        claim = await c.client.update(pvcs, "default", claim, subresource="status")
    return claim


async def _volume(c: InProcessCluster, name: str, path: Path, claim: JSON) -> None:
    body = {"metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                     "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                     "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default",
                                  "name": claim["metadata"]["name"], "uid": claim["metadata"]["uid"]}}}
    await c.client.create(c.resource("", "v1", "persistentvolumes"), "", body)


async def test_a_bound_claim_mounts_its_volume_directory(cluster: InProcessCluster, tmp_path: Path) -> None:
    manager = VolumeManager(cluster.client, tmp_path / "pods")
    directory = tmp_path / "storage" / "pvc-1_default_data"
    await _volume(cluster, "pvc-1", directory, await _claim(cluster, "data", bound_to="pvc-1"))
    pod_ = _with([{"name": "v", "persistentVolumeClaim": {"claimName": "data"}},
                  {"name": "ro", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}])
    mounts = await manager.mounts(pod_, {"volumeMounts": [{"name": "v", "mountPath": "/data"},
                                                          {"name": "ro", "mountPath": "/ro"}]})
    assert [(m.host_path, m.readonly) for m in mounts] == [(str(directory), False), (str(directory), True)]
    assert directory.is_dir() and directory.stat().st_mode & 0o777 == 0o777
    await manager.cleanup("u1")
    assert directory.is_dir(), "the claim's data outlives the pod"


async def test_a_claim_that_is_missing_or_unbound_fails_the_mount(cluster: InProcessCluster, tmp_path: Path) -> None:
    manager = VolumeManager(cluster.client, tmp_path)
    pod_ = _with([{"name": "v", "persistentVolumeClaim": {"claimName": "later"}}])
    with pytest.raises(VolumeMountFailure, match='persistentvolumeclaims "later" not found'):
        await manager.mounts(pod_, {})
    await _claim(cluster, "later")
    with pytest.raises(VolumeMountFailure, match="error processing PVC default/later: PVC is not bound"):
        await manager.mounts(pod_, {})


async def test_a_missing_configmap_volume_waits_in_container_creating() -> None:
    seen: list[tuple[PodSandboxConfig, ContainerConfig]] = []

    def planner(sandbox: PodSandboxConfig, config: ContainerConfig) -> ContainerPlan:
        seen.append((sandbox, config))
        return annotation_plan(sandbox, config)

    async with InProcessCluster() as cluster:
        client = ValidatingClient(cluster.client)
        pods, events = cluster.resource("", "v1", "pods"), cluster.resource("", "v1", "events")
        agent = NodeAgent(client, AgentSettings(pod_field_selector="spec.nodeName=solo", status_interval=0.1))
        runtime = FakeRuntime(planner=planner, pod_cidr="10.42.7.0/24")
        files = PodFiles(PodFileSettings(cluster_dns=("10.43.0.10",), resolv_conf=None))
        with tempfile.TemporaryDirectory() as root:
            volumes = VolumeManager(client, Path(root), pod_files=files)
            syncer = PodSyncer(SyncSettings("solo", ("192.0.2.5",), image_backoff_initial=0.1), runtime,
                               agent.status, volumes=volumes, recorder=EventRecorder(client, "kubelet", "solo"))
            agent.add_node(NodeConfig("solo", {"cpu": "2", "memory": "2Gi", "pods": "10"},
                                      pod_cidr="10.42.7.0/24"), runtime, syncer)
            body = pod("mounty", "solo")
            body["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "later"}}]
            body["spec"]["containers"][0]["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}]
            await client.create(pods, "default", body)
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop=stop))
            try:
                async def failed_mount() -> JSON | None:
                    found = await client.list(events, "default")
                    return next((e for e in found.items if e.get("reason") == "FailedMount"), None)

                event = await eventually(failed_mount, what="a FailedMount event")
                assert event["type"] == "Warning" and event["message"] == (
                    'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found')

                async def creating() -> JSON | None:
                    found = await client.get(pods, "default", "mounty")
                    statuses = (found.get("status") or {}).get("containerStatuses") or []
                    return found if statuses else None

                found = await eventually(creating, what="the pod's first status")
                statuses = found["status"]["containerStatuses"]
                assert found["status"]["phase"] == "Pending"
                assert [s["state"].get("waiting", {}).get("reason") for s in statuses] == ["ContainerCreating"]
                await client.create(cluster.resource("", "v1", "configmaps"), "default",
                                    {"metadata": {"name": "later"}, "data": {"k": "v"}})

                async def running() -> JSON | None:
                    found = await client.get(pods, "default", "mounty")
                    statuses = (found.get("status") or {}).get("containerStatuses") or []
                    return found if statuses and "running" in statuses[0]["state"] else None

                found = await eventually(running, what="the container running once the ConfigMap exists")
            finally:
                stop.set()
                await task
            sandbox, config = seen[-1]
            mounts = {m.container_path: m.host_path for m in config.mounts}
            assert Path(mounts["/cfg"], "k").read_text() == "v"
            hosts = Path(mounts["/etc/hosts"]).read_text()
            assert f"{found['status']['podIP']}\tmounty\n" in hosts
            assert sandbox.dns is not None and sandbox.dns.servers == ("10.43.0.10",)
            assert sandbox.dns.searches[0] == "default.svc.cluster.local"


async def test_refresh_rewrites_changed_files_only(cluster: InProcessCluster, tmp_path: Path) -> None:
    manager = VolumeManager(cluster.client, tmp_path)
    items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
    pod_ = _with([{"name": "d", "downwardAPI": {"items": items}}, {"name": "c", "configMap": {"name": "cm"}}])
    mounts = await manager.mounts(pod_, {"volumeMounts": [{"name": "d", "mountPath": "/d"},
                                                          {"name": "c", "mountPath": "/c"}]})
    labels, config = Path(mounts[0].host_path), Path(mounts[1].host_path)
    before = (labels / "..data").resolve(), (config / "..data").resolve()
    await manager.refresh(pod_)
    assert ((labels / "..data").resolve(), (config / "..data").resolve()) == before  # nothing changed
    relabelled = {**pod_, "metadata": {**pod_["metadata"], "labels": {"app": "web", "new": "1"}}}
    await cluster.client.delete(cluster.resource("", "v1", "configmaps"), "default", "cm")
    await manager.refresh(relabelled)
    assert (labels / "labels").read_text() == 'app="web"\nnew="1"'
    assert (config / "k").read_text() == "v", "a source that went away keeps its files"
    assert len([p for p in labels.iterdir() if p.name.startswith("..") and not p.is_symlink()]) == 1
