"""StatefulSet updates and claim retention: RollingUpdate from the highest ordinal, partitions, OnDelete,
revision history and rollback, minReadySeconds, and persistentVolumeClaimRetentionPolicy with the collector."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from test_statefulset_helpers import NS, Kube, TwinWatch, eventually, rollout_status, running, sts_manifest

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.gc import GarbageCollector
from nanokube.controllers.statefulset import StatefulSetController
from nanokube.util.timeutil import now


async def _status(kube: Kube, name: str = "web", **want: object) -> dict | None:
    sts = await kube.get_set(name)
    status = sts.get("status") or {}
    return sts if all(status.get(k, 0) == v for k, v in want.items()) else None


async def _images(kube: Kube) -> dict[str, str]:
    return {n: p["spec"]["containers"][0]["image"] for n, p in (await kube.pod_map()).items()
            if not p["metadata"].get("deletionTimestamp")}


async def _all_images(kube: Kube, image: str, count: int = 3) -> bool:
    images = await _images(kube)
    return len(images) == count and set(images.values()) == {image}


async def _rolled_out(kube: Kube, name: str = "web") -> dict | None:
    sts = await kube.get_set(name)
    _, done = rollout_status(sts)
    status = sts["status"]
    return sts if done and status.get("currentRevision") == status.get("updateRevision") else None


async def test_rolling_update_replaces_pods_from_the_highest_ordinal() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 3))
            first = (await eventually(lambda: _rolled_out(kube)))["status"]["currentRevision"]
            async with TwinWatch(kube) as watch:
                await kube.patch_set("web", {"spec": {"template": {"spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.26"}]}}}})
                await eventually(lambda: _all_images(kube, "nginx:1.26"), what="all pods on nginx:1.26")
                done = await eventually(lambda: _rolled_out(kube))
            assert watch.deleted == ["web-2", "web-1", "web-0"]
            assert watch.twins == []
        status = done["status"]
        assert status["currentRevision"] == status["updateRevision"] != first
        assert status["updatedReplicas"] == status["currentReplicas"] == status["readyReplicas"] == 3
        assert status["observedGeneration"] == 2
        revisions = await kube.revision_list()
        assert [(r["metadata"]["name"], r["revision"]) for r in revisions] == [(first, 1), (status["updateRevision"], 2)]
        labels = {p["metadata"]["labels"]["controller-revision-hash"] for p in (await kube.pod_map()).values()}
        assert labels == {status["updateRevision"]}
        assert sorted(await kube.claim_map()) == ["www-web-0", "www-web-1", "www-web-2"]


async def test_partition_keeps_lower_ordinals_on_the_old_revision() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 3, claims=False, updateStrategy={
                "type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
            old = (await eventually(lambda: _rolled_out(kube)))["status"]["currentRevision"]
            await kube.patch_set("web", {"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.26"}]}}}})

            async def partial() -> dict | None:
                sts = await _status(kube, updatedReplicas=1, currentReplicas=2, readyReplicas=3, observedGeneration=2)
                return sts if sts and await _images(kube) == {
                    "web-0": "nginx:1.25", "web-1": "nginx:1.25", "web-2": "nginx:1.26"} else None

            sts = await eventually(partial, what="only web-2 updated")
            assert sts["status"]["currentRevision"] == old != sts["status"]["updateRevision"]
            assert rollout_status(sts) == ("partitioned roll out complete: 1 new pods have been updated...\n", True)
            await asyncio.sleep(0.2)
            assert (await _images(kube))["web-1"] == "nginx:1.25"

            await kube.patch_set("web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
            await eventually(lambda: _all_images(kube, "nginx:1.26"))
            done = await eventually(lambda: _rolled_out(kube))
        assert done["status"]["currentRevision"] == sts["status"]["updateRevision"]


async def test_on_delete_replaces_only_deleted_pods() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 3, claims=False, updateStrategy={"type": "OnDelete"}))
            await eventually(lambda: _status(kube, readyReplicas=3))
            await kube.patch_set("web", {"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.26"}]}}}})
            sts = await eventually(lambda: _status(kube, observedGeneration=2, updatedReplicas=0, currentReplicas=3))
            assert sts["status"]["updateRevision"] != sts["status"]["currentRevision"]
            await asyncio.sleep(0.2)
            assert set((await _images(kube)).values()) == {"nginx:1.25"}
            await kube.client.delete(kube.pods, NS, "web-0")

            async def web0_updated() -> bool:
                return (await _images(kube)).get("web-0") == "nginx:1.26"

            await eventually(web0_updated, what="web-0 recreated on the new template")
            await eventually(lambda: _status(kube, updatedReplicas=1, currentReplicas=2, readyReplicas=3))
        assert (await _images(kube))["web-2"] == "nginx:1.25"


async def test_history_is_trimmed_and_a_rollback_renumbers_the_old_revision() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 2, claims=False, revisionHistoryLimit=1))
            names = [(await eventually(lambda: _rolled_out(kube)))["status"]["currentRevision"]]
            for image in ("nginx:1.26", "nginx:1.27"):
                await kube.patch_set("web", {"spec": {"template": {"spec": {"containers": [
                    {"name": "nginx", "image": image}]}}}})
                await eventually(lambda image=image: _all_images(kube, image, 2))  # type: ignore[misc]
                names.append((await eventually(lambda: _rolled_out(kube)))["status"]["currentRevision"])
            assert len(set(names)) == 3

            async def trimmed() -> list[tuple[str, int]] | None:
                revisions = [(r["metadata"]["name"], r["revision"]) for r in await kube.revision_list()]
                return revisions if len(revisions) == 2 else None

            assert await eventually(trimmed) == [(names[1], 2), (names[2], 3)]  # the oldest unused one went

            await kube.patch_set("web", {"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.26"}]}}}})  # back to revision 2's template
            await eventually(lambda: _all_images(kube, "nginx:1.26", 2))
            done = await eventually(lambda: _rolled_out(kube))
        assert done["status"]["currentRevision"] == names[1]  # no new revision: the old one is reused
        assert await eventually(trimmed) == [(names[2], 3), (names[1], 4)]


async def test_min_ready_seconds_holds_the_next_pod_until_available() -> None:
    offset = timedelta()

    def clock() -> datetime:
        return now() + offset

    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client, clock=clock)):
        kube = Kube(cluster)
        await kube.create_set(sts_manifest("web", 2, claims=False, minReadySeconds=60))
        await eventually(lambda: kube.names(), what="web-0")
        await kube.set_ready("web-0")
        await eventually(lambda: _status(kube, replicas=1, readyReplicas=1, availableReplicas=0))
        await asyncio.sleep(0.2)
        assert await kube.names() == ["web-0"]  # ready, but not yet for minReadySeconds
        offset = timedelta(seconds=120)
        await kube.client.patch(kube.pods, NS, "web-0", {"metadata": {"annotations": {"poke": "1"}}})
        await eventually(lambda: _status(kube, replicas=2, readyReplicas=1, availableReplicas=1))
        assert await kube.names() == ["web-0", "web-1"]


async def test_retention_delete_gives_claims_owners_the_collector_follows() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client),
                                                      GarbageCollector(cluster.client)):
        kube = Kube(cluster)
        policy = {"whenDeleted": "Delete", "whenScaled": "Delete"}
        async with kube.kubelet():
            sts = await kube.create_set(sts_manifest("web", 3, persistentVolumeClaimRetentionPolicy=policy))
            await eventually(lambda: _status(kube, readyReplicas=3))

            async def owned_by_set() -> bool:
                claims = await kube.claim_map()
                return len(claims) == 3 and all(
                    [r["uid"] for r in c["metadata"].get("ownerReferences") or []] == [sts["metadata"]["uid"]]
                    for c in claims.values())

            await eventually(owned_by_set, what="claims owned by the set")
            await kube.patch_set("web", {"spec": {"replicas": 1}})
            await eventually(lambda: _claims_are(kube, "www-web-0"), what="scaled-away claims collected")
            await eventually(lambda: _status(kube, replicas=1, readyReplicas=1))

            await kube.patch_set("web", {"spec": {"replicas": 2}})  # a fresh claim for the new web-1
            await eventually(lambda: _claims_are(kube, "www-web-0", "www-web-1"))
            await eventually(lambda: _status(kube, replicas=2, readyReplicas=2))
            await kube.client.delete(kube.sets, NS, "web")
            await eventually(lambda: _claims_are(kube), what="claims collected with the set")
            await eventually(lambda: _no_pods(kube), what="pods collected with the set")


async def _claims_are(kube: Kube, *names: str) -> bool:
    return sorted(await kube.claim_map()) == sorted(names)


async def _no_pods(kube: Kube) -> bool:
    return not await kube.names()


async def test_retain_by_default_keeps_claims_when_the_set_goes() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client),
                                                      GarbageCollector(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 2))
            await eventually(lambda: _status(kube, readyReplicas=2))
            await kube.client.delete(kube.sets, NS, "web")
            await eventually(lambda: _no_pods(kube), what="pods collected with the set")
        assert sorted(await kube.claim_map()) == ["www-web-0", "www-web-1"]


@pytest.mark.parametrize("policy", ["OrderedReady", "Parallel"])
async def test_max_unavailable_replaces_that_many_pods_at_once(policy: str) -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet(bind=True):
            await kube.create_set(sts_manifest("web", 4, claims=False, podManagementPolicy=policy, updateStrategy={
                "type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}))
            await eventually(lambda: _rolled_out(kube))
        await kube.patch_set("web", {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.26"}]}}}})

        async def terminating() -> list[str] | None:
            names = sorted(n for n, p in (await kube.pod_map()).items() if p["metadata"].get("deletionTimestamp"))
            return names if len(names) >= 2 else None

        assert await eventually(terminating, what="two pods terminating") == ["web-2", "web-3"]
        await eventually(lambda: _status(kube, observedGeneration=2, currentReplicas=2))
        await asyncio.sleep(0.2)  # the budget is spent: web-0 and web-1 wait
        assert await terminating() == ["web-2", "web-3"]
        async with kube.kubelet(bind=True):
            await eventually(lambda: _all_images(kube, "nginx:1.26", 4))
            await eventually(lambda: _rolled_out(kube))


async def test_a_member_waits_for_the_claim_an_earlier_pod_still_owns() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):  # no collector
        kube = Kube(cluster)
        policy = {"whenDeleted": "Retain", "whenScaled": "Delete"}
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 2, persistentVolumeClaimRetentionPolicy=policy))
            await eventually(lambda: _status(kube, readyReplicas=2))
            old_pod = (await kube.pod_map())["web-1"]["metadata"]["uid"]
            await kube.patch_set("web", {"spec": {"replicas": 1}})
            await eventually(lambda: _no_pod(kube, "web-1"), what="web-1 scaled away")
        claim = (await kube.claim_map())["www-web-1"]
        assert [r["uid"] for r in claim["metadata"]["ownerReferences"]] == [old_pod]  # for the collector

        await kube.patch_set("web", {"spec": {"replicas": 2}})
        await eventually(lambda: _status(kube, observedGeneration=3))
        await asyncio.sleep(0.2)
        assert await kube.names() == ["web-0"]  # the claim is about to go with the old web-1: wait
        await kube.client.delete(kube.pvcs, NS, "www-web-1")  # what the collector would do
        await eventually(lambda: _claims_are(kube, "www-web-0", "www-web-1"), what="a fresh claim")
        await eventually(lambda: _has_pod(kube, "web-1"), what="the new web-1")
        fresh = (await kube.claim_map())["www-web-1"]
        assert fresh["metadata"]["uid"] != claim["metadata"]["uid"]
        assert not fresh["metadata"].get("ownerReferences")  # in range again: nobody takes it along


async def _no_pod(kube: Kube, name: str) -> bool:
    return name not in await kube.names()


async def _has_pod(kube: Kube, name: str) -> bool:
    return name in await kube.names()
