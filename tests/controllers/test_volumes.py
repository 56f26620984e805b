"""PV/PVC binding, reclaim and in-use protection against an in-process control plane.

The four volume controllers run together as the controller manager would run them; each test creates claims,
volumes and Pods through the API and waits (bounded) for the state kube's controllers would reach.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from harness import eventually

from nanokube.api.errors import NotFound
from nanokube.api.objects import deep_copy
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.volumes import VolumeSettings, volume_controllers

JSON = dict[str, Any]


@asynccontextmanager
async def volumes_running(settings: VolumeSettings | None = None) -> AsyncIterator[InProcessCluster]:
    async with InProcessCluster() as cluster:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop=stop)) for c in volume_controllers(cluster.client, settings)]
        try:
            yield cluster
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


def pv_body(name: str, size: str, modes: list[str], *, cls: str = "manual", policy: str = "Retain",
            labels: dict[str, str] | None = None, claim_ref: JSON | None = None) -> JSON:
    spec: JSON = {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": cls,
                  "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/data/{name}"}}
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def pvc_body(name: str, size: str, modes: list[str], *, cls: str | None = "manual", volume: str = "",
             selector: JSON | None = None) -> JSON:
    spec: JSON = {"accessModes": modes, "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume:
        spec["volumeName"] = volume
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name}, "spec": spec}


class Api:
    def __init__(self, cluster: InProcessCluster) -> None:
        self.c = cluster.client
        self.pvs = cluster.resource("", "v1", "persistentvolumes")
        self.pvcs = cluster.resource("", "v1", "persistentvolumeclaims")
        self.pods = cluster.resource("", "v1", "pods")
        self.events = cluster.resource("", "v1", "events")

    async def pv(self, name: str) -> JSON:
        return await self.c.get(self.pvs, "", name)

    async def pvc(self, name: str) -> JSON:
        return await self.c.get(self.pvcs, "default", name)

    async def gone(self, resource: Any, namespace: str, name: str) -> bool:
        try:
            await self.c.get(resource, namespace, name)
        except NotFound:
            return True
        return False

    async def reasons(self, name: str, namespace: str = "default") -> dict[str, str]:
        listed = await self.c.list(self.events, namespace)
        return {e["reason"]: e["message"] for e in listed.items if e["involvedObject"].get("name") == name}

    async def pod_using(self, name: str, claim: str, node: str = "node-a") -> None:
        body = {"metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "x"}],
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}
        await self.c.create(self.pods, "default", body)
        if node:
            await self.c.bind("default", name, node)


def phase(obj: JSON) -> str:
    return str(obj.get("status", {}).get("phase", ""))


async def test_static_binding_takes_the_smallest_fitting_volume_of_the_class() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        for body in (pv_body("small", "1Gi", ["ReadWriteOnce"]), pv_body("mid", "5Gi", ["ReadWriteOnce"]),
                     pv_body("big", "10Gi", ["ReadWriteOnce"]), pv_body("fast", "2Gi", ["ReadWriteOnce"], cls="fast"),
                     pv_body("shared", "3Gi", ["ReadWriteMany"])):
            await api.c.create(api.pvs, "", body)
        # Volumes start Pending; the controller makes them Available (a claim binds whatever is Available).
        for name in ("small", "mid", "big", "fast", "shared"):
            await eventually(partial(_with_phase, api, name, "Available"))
        await api.c.create(api.pvcs, "default", pvc_body("data", "2Gi", ["ReadWriteOnce"]))

        async def bound() -> JSON:
            pvc = await api.pvc("data")
            return pvc if phase(pvc) == "Bound" else {}

        pvc = await eventually(bound)
        assert pvc["spec"]["volumeName"] == "mid"
        assert pvc["status"]["capacity"] == {"storage": "5Gi"}
        assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
        notes = pvc["metadata"]["annotations"]
        assert notes["pv.kubernetes.io/bind-completed"] == "yes"
        assert notes["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert "kubernetes.io/pvc-protection" in pvc["metadata"]["finalizers"]
        pv = await eventually(lambda: _with_phase(api, "mid", "Bound"))
        ref = pv["spec"]["claimRef"]
        assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == (
            "PersistentVolumeClaim", "default", "data", pvc["metadata"]["uid"])
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert "kubernetes.io/pv-protection" in pv["metadata"]["finalizers"]
        for name in ("small", "big", "fast", "shared"):
            other = await eventually(partial(_with_phase, api, name, "Available"))
            assert "claimRef" not in other["spec"]

        # A ReadWriteMany claim can only have the ReadWriteMany volume.
        await api.c.create(api.pvcs, "default", pvc_body("many", "1Gi", ["ReadWriteMany"]))
        many = await eventually(lambda: _claim_bound(api, "many"))
        assert many["spec"]["volumeName"] == "shared"


async def _with_phase(api: Api, name: str, wanted: str) -> JSON:
    pv = await api.pv(name)
    return pv if phase(pv) == wanted else {}


async def _claim_bound(api: Api, name: str) -> JSON:
    pvc = await api.pvc(name)
    return pvc if phase(pvc) == "Bound" else {}


async def test_selectors_and_prebinding() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        await api.c.create(api.pvs, "", pv_body("plain", "1Gi", ["ReadWriteOnce"]))
        await api.c.create(api.pvs, "", pv_body("ssd", "8Gi", ["ReadWriteOnce"], labels={"disk": "ssd"}))
        await api.c.create(api.pvs, "", pv_body("reserved", "4Gi", ["ReadWriteOnce"],
                                                claim_ref={"namespace": "default", "name": "mine"}))
        await api.c.create(api.pvs, "", pv_body("named", "2Gi", ["ReadWriteOnce"]))
        for name in ("plain", "ssd", "reserved", "named"):
            await eventually(partial(_with_phase, api, name, "Available"))
        await api.c.create(api.pvcs, "default", pvc_body(
            "picky", "1Gi", ["ReadWriteOnce"], selector={"matchLabels": {"disk": "ssd"}}))
        await api.c.create(api.pvcs, "default", pvc_body("mine", "1Gi", ["ReadWriteOnce"]))
        await api.c.create(api.pvcs, "default", pvc_body("asks", "1Gi", ["ReadWriteOnce"], volume="named"))
        assert (await eventually(lambda: _claim_bound(api, "picky")))["spec"]["volumeName"] == "ssd"
        assert (await eventually(lambda: _claim_bound(api, "mine")))["spec"]["volumeName"] == "reserved"
        asks = await eventually(lambda: _claim_bound(api, "asks"))
        assert asks["spec"]["volumeName"] == "named"
        # The user chose the volume: the claim is not marked bound by the controller.
        assert "pv.kubernetes.io/bound-by-controller" not in asks["metadata"]["annotations"]
        reserved = await api.pv("reserved")
        assert "pv.kubernetes.io/bound-by-controller" not in (reserved["metadata"].get("annotations") or {})
        assert (await api.pv("plain"))["status"]["phase"] == "Available"

        # A claim naming a volume too small for it waits, with kube's VolumeMismatch event.
        await api.c.create(api.pvs, "", pv_body("tiny", "1Mi", ["ReadWriteOnce"]))
        await api.c.create(api.pvcs, "default", pvc_body("toobig", "1Gi", ["ReadWriteOnce"], volume="tiny"))
        got = await eventually(lambda: _event(api, "toobig", "VolumeMismatch"))
        assert got == 'Cannot bind to requested volume "tiny": requested PV is too small'
        assert phase(await api.pvc("toobig")) == "Pending"


async def _event(api: Api, name: str, reason: str, namespace: str = "default") -> str:
    return (await api.reasons(name, namespace)).get(reason, "")


async def test_default_class_is_created_and_assigned_to_claims_without_one() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        classes = cluster.resource("storage.k8s.io", "v1", "storageclasses")
        sc = await eventually(lambda: api.c.get(classes, "", "local-path"))
        assert sc["provisioner"] == "rancher.io/local-path"
        assert sc["reclaimPolicy"] == "Delete"
        assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
        assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"

        await api.c.create(api.pvcs, "default", pvc_body("plain", "1Gi", ["ReadWriteOnce"], cls=None))
        pvc = await eventually(lambda: _claim_with_class(api, "plain"))
        assert pvc["spec"]["storageClassName"] == "local-path"
        message = await eventually(lambda: _event(api, "plain", "WaitForFirstConsumer"))
        assert message == "waiting for first consumer to be created before binding"
        assert phase(await api.pvc("plain")) == "Pending"

        # An explicit empty class means "no class": it is never defaulted and waits for a static volume.
        await api.c.create(api.pvcs, "default", pvc_body("none", "1Gi", ["ReadWriteOnce"], cls=""))
        message = await eventually(lambda: _event(api, "none", "FailedBinding"))
        assert message == "no persistent volumes available for this claim and no storage class is set"
        assert (await api.pvc("none"))["spec"]["storageClassName"] == ""

        # A pod that names the claim but is not scheduled yet is what the claim now waits for.
        await api.pod_using("user", "plain", node="")
        await api.c.create(api.pvcs, "default", pvc_body("second", "1Gi", ["ReadWriteOnce"], cls="local-path"))
        await api.pod_using("user2", "second", node="")
        message = await eventually(lambda: _event(api, "second", "WaitForPodScheduled"))
        assert message == "waiting for pod user2 to be scheduled"


async def _claim_with_class(api: Api, name: str) -> JSON:
    pvc = await api.pvc(name)
    return pvc if pvc["spec"].get("storageClassName") else {}


async def test_an_existing_default_class_is_left_alone() -> None:
    async with InProcessCluster() as cluster:
        classes = cluster.resource("storage.k8s.io", "v1", "storageclasses")
        await cluster.client.create(classes, "", {"metadata": {"name": "local-path"}, "provisioner": "example.com/x",
                                                  "volumeBindingMode": "Immediate"})
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop=stop)) for c in volume_controllers(cluster.client)]
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        sc = await cluster.client.get(classes, "", "local-path")
        assert sc["provisioner"] == "example.com/x"
        assert not (sc["metadata"].get("annotations") or {})


async def test_retain_keeps_a_released_volume_and_delete_of_a_static_volume_fails() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        await api.c.create(api.pvs, "", pv_body("kept", "1Gi", ["ReadWriteOnce"], policy="Retain"))
        await api.c.create(api.pvs, "", pv_body("static", "1Gi", ["ReadWriteOnce"], cls="other", policy="Delete"))
        await api.c.create(api.pvcs, "default", pvc_body("a", "1Gi", ["ReadWriteOnce"]))
        await api.c.create(api.pvcs, "default", pvc_body("b", "1Gi", ["ReadWriteOnce"], cls="other"))
        await eventually(lambda: _claim_bound(api, "a"))
        await eventually(lambda: _claim_bound(api, "b"))
        await api.c.delete(api.pvcs, "default", "a")
        await api.c.delete(api.pvcs, "default", "b")
        await eventually(lambda: api.gone(api.pvcs, "default", "a"))
        kept = await eventually(lambda: _with_phase(api, "kept", "Released"))
        assert kept["spec"]["claimRef"]["name"] == "a"
        failed = await eventually(lambda: _with_phase(api, "static", "Failed"))
        assert failed["status"]["message"] == ('error getting deleter volume plugin for volume "static": '
                                               "no deletable volume plugin matched")
        assert await eventually(lambda: _event(api, "static", "VolumeFailedDelete"))
        # The controllers keep working; the retained volume stays Released with its old claim reference.
        await api.c.create(api.pvs, "", pv_body("next", "1Gi", ["ReadWriteOnce"]))
        await api.c.create(api.pvcs, "default", pvc_body("c", "1Gi", ["ReadWriteOnce"]))
        assert (await eventually(lambda: _claim_bound(api, "c")))["spec"]["volumeName"] == "next"
        assert phase(await api.pv("kept")) == "Released"


async def test_claims_in_use_and_bound_volumes_are_protected() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        await api.c.create(api.pvs, "", pv_body("vol", "1Gi", ["ReadWriteOnce"], policy="Retain"))
        await api.c.create(api.pvcs, "default", pvc_body("data", "1Gi", ["ReadWriteOnce"]))
        await eventually(lambda: _claim_bound(api, "data"))
        await api.pod_using("user", "data")
        await eventually(lambda: _has_finalizer(api.pv("vol"), "kubernetes.io/pv-protection"))

        # A bound volume being deleted waits for its claim; a claim being deleted waits for its pod.
        await api.c.delete(api.pvs, "", "vol")
        await api.c.delete(api.pvcs, "default", "data")
        pvc = await api.pvc("data")
        assert pvc["metadata"]["deletionTimestamp"]
        assert pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        # The next object's binding shows the controllers have looked at everything since.
        await api.c.create(api.pvs, "", pv_body("other", "1Gi", ["ReadWriteOnce"]))
        await api.c.create(api.pvcs, "default", pvc_body("other", "1Gi", ["ReadWriteOnce"]))
        await eventually(lambda: _claim_bound(api, "other"))
        assert not await api.gone(api.pvcs, "default", "data")
        vol = await api.pv("vol")
        assert vol["metadata"]["deletionTimestamp"] and phase(vol) == "Bound"

        await api.c.delete(api.pods, "default", "user", grace_period_seconds=0)
        await eventually(lambda: api.gone(api.pvcs, "default", "data"))
        await eventually(lambda: api.gone(api.pvs, "", "vol"))


async def _has_finalizer(obj: Awaitable[JSON], finalizer: str) -> bool:
    return finalizer in ((await obj)["metadata"].get("finalizers") or [])


async def test_a_bound_claim_whose_volume_vanishes_is_lost() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        await api.c.create(api.pvs, "", pv_body("vol", "1Gi", ["ReadWriteOnce"]))
        await api.c.create(api.pvcs, "default", pvc_body("data", "1Gi", ["ReadWriteOnce"]))
        await eventually(lambda: _claim_bound(api, "data"))
        await eventually(lambda: _has_finalizer(api.pv("vol"), "kubernetes.io/pv-protection"))
        # Force the volume away (an administrator removing the finalizer).
        await api.c.delete(api.pvs, "", "vol")
        pv = deep_copy(await api.pv("vol"))
        pv["metadata"]["finalizers"] = []
        await api.c.update(api.pvs, "", pv)
        await eventually(lambda: api.gone(api.pvs, "", "vol"))

        async def lost() -> JSON:
            pvc = await api.pvc("data")
            return pvc if phase(pvc) == "Lost" else {}

        pvc = await eventually(lost)
        assert "capacity" not in pvc["status"]
        message = await eventually(lambda: _event(api, "data", "ClaimLost"))
        assert message == "Bound claim has lost its PersistentVolume. Data on the volume is lost!"


async def test_wait_for_first_consumer_static_volumes_bind_once_the_scheduler_reserves_one() -> None:
    async with volumes_running() as cluster:
        api = Api(cluster)
        classes = cluster.resource("storage.k8s.io", "v1", "storageclasses")
        await api.c.create(classes, "", {"metadata": {"name": "local-storage"},
                                         "provisioner": "kubernetes.io/no-provisioner",
                                         "volumeBindingMode": "WaitForFirstConsumer"})
        await api.c.create(api.pvs, "", pv_body("disk", "1Gi", ["ReadWriteOnce"], cls="local-storage"))
        await eventually(partial(_with_phase, api, "disk", "Available"))
        pvc = await api.c.create(api.pvcs, "default", pvc_body("data", "1Gi", ["ReadWriteOnce"], cls="local-storage"))
        assert await eventually(lambda: _event(api, "data", "WaitForFirstConsumer"))
        assert phase(await api.pvc("data")) == "Pending" and "claimRef" not in (await api.pv("disk"))["spec"]
        # The scheduler's VolumeBinding plugin reserves the volume on the chosen node for the claim.
        ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default", "name": "data",
               "uid": pvc["metadata"]["uid"]}
        await api.c.patch(api.pvs, "", "disk", {"spec": {"claimRef": ref}})
        assert (await eventually(lambda: _claim_bound(api, "data")))["spec"]["volumeName"] == "disk"
        assert phase(await eventually(partial(_with_phase, api, "disk", "Bound"))) == "Bound"

        # With nothing to bind and no provisioner behind the class, kube says so.
        await api.c.create(classes, "", {"metadata": {"name": "static"}, "provisioner": "kubernetes.io/no-provisioner",
                                         "volumeBindingMode": "Immediate"})
        await api.c.create(api.pvcs, "default", pvc_body("nothing", "1Gi", ["ReadWriteOnce"], cls="static"))
        assert await eventually(lambda: _event(api, "nothing", "ProvisioningFailed")) == (
            "no volume plugin matched name: kubernetes.io/no-provisioner")
        await api.c.create(api.pvcs, "default", pvc_body("typo", "1Gi", ["ReadWriteOnce"], cls="nonesuch"))
        assert await eventually(lambda: _event(api, "typo", "ProvisioningFailed")) == (
            'storageclass.storage.k8s.io "nonesuch" not found')
