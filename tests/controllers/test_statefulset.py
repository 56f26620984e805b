"""StatefulSets come up in order with a claim per Pod, keep their claims, scale down from the top, and report
the status kubectl reads. (Updates and retention: test_statefulset_update.py.)"""

from __future__ import annotations

import asyncio

from test_statefulset_helpers import NS, Kube, TwinWatch, eventually, rollout_status, running, sts_manifest

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.statefulset import StatefulSetController


async def _names_are(kube: Kube, *names: str) -> bool:
    return await kube.names() == sorted(names)


async def _status(kube: Kube, name: str = "web", **want: object) -> dict | None:
    sts = await kube.get_set(name)
    status = sts.get("status") or {}
    return sts if all(status.get(k, 0) == v for k, v in want.items()) else None


async def test_pods_start_in_order_each_with_its_claim() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        sts = await kube.create_set(sts_manifest("web", 3))
        await eventually(lambda: _names_are(kube, "web-0"), what="web-0")
        await eventually(lambda: _status(kube, replicas=1, readyReplicas=0, observedGeneration=1))
        await asyncio.sleep(0.2)  # the controller has looked again: web-1 waits for web-0 to be Ready
        assert await kube.names() == ["web-0"]
        assert rollout_status(await kube.get_set())[0] == "Waiting for 3 pods to be ready...\n"

        await kube.set_ready("web-0")
        await eventually(lambda: _names_are(kube, "web-0", "web-1"), what="web-1 after web-0 is Ready")
        await asyncio.sleep(0.2)
        assert await kube.names() == ["web-0", "web-1"]
        await kube.set_ready("web-1")
        await eventually(lambda: _names_are(kube, "web-0", "web-1", "web-2"), what="web-2")
        await kube.set_ready("web-2")
        done = await eventually(lambda: _status(kube, replicas=3, readyReplicas=3, availableReplicas=3,
                                                currentReplicas=3, updatedReplicas=3))
        status = done["status"]
        assert status["currentRevision"] == status["updateRevision"]
        assert status["currentRevision"].startswith("web-") and status["collisionCount"] == 0
        assert rollout_status(done) == ("partitioned roll out complete: 3 new pods have been updated...\n", True)

        pods = await kube.pod_map()
        for i in range(3):
            pod = pods[f"web-{i}"]
            assert pod["metadata"]["labels"] == {
                "app": "nginx", "statefulset.kubernetes.io/pod-name": f"web-{i}",
                "apps.kubernetes.io/pod-index": str(i), "controller-revision-hash": status["updateRevision"]}
            assert pod["metadata"]["ownerReferences"] == [{
                "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": sts["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
            assert pod["spec"]["hostname"] == f"web-{i}" and pod["spec"]["subdomain"] == "nginx"
            assert {"name": "www", "persistentVolumeClaim": {"claimName": f"www-web-{i}"}} in pod["spec"]["volumes"]

        claims = await kube.claim_map()
        assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
        assert claims["www-web-0"]["metadata"]["labels"] == {"app": "nginx"}
        assert claims["www-web-0"]["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
        assert not claims["www-web-0"]["metadata"].get("ownerReferences")  # Retain: nobody takes it along

        messages = await kube.event_messages()
        assert messages[:2] == ["create Claim www-web-0 Pod web-0 in StatefulSet web success",
                                "create Pod web-0 in StatefulSet web successful"]
        assert "create Pod web-2 in StatefulSet web successful" in messages
        revisions = await kube.revision_list()
        assert [r["metadata"]["name"] for r in revisions] == [status["updateRevision"]]
        assert revisions[0]["revision"] == 1
        assert revisions[0]["data"]["spec"]["template"]["$patch"] == "replace"
        assert revisions[0]["metadata"]["labels"]["app"] == "nginx"


async def test_a_deleted_pod_comes_back_with_the_same_claim() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet():
            await kube.create_set(sts_manifest("web", 3))
            await eventually(lambda: _status(kube, readyReplicas=3), what="3 ready")
        claims = await kube.claim_map()
        old = (await kube.pod_map())["web-1"]
        await kube.client.delete(kube.pods, NS, "web-1")

        async def replaced() -> dict | None:
            pod = (await kube.pod_map()).get("web-1")
            return pod if pod is not None and pod["metadata"]["uid"] != old["metadata"]["uid"] else None

        new = await eventually(replaced, what="a new web-1")
        assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}} in new["spec"]["volumes"]
        after = await kube.claim_map()
        assert sorted(after) == sorted(claims)
        assert all(after[n]["metadata"]["uid"] == claims[n]["metadata"]["uid"] for n in claims)  # kept, reused
        assert "create Pod web-1 in StatefulSet web successful" in (await kube.event_messages())[3:]


async def test_scale_down_goes_from_the_highest_ordinal_one_at_a_time() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with kube.kubelet(bind=True):
            await kube.create_set(sts_manifest("web", 3))
            await eventually(lambda: _status(kube, readyReplicas=3), what="3 ready")
        await kube.patch_set("web", {"spec": {"replicas": 1}})

        async def terminating() -> list[str]:
            return sorted(n for n, p in (await kube.pod_map()).items() if p["metadata"].get("deletionTimestamp"))

        assert await eventually(terminating, what="web-2 terminating") == ["web-2"]
        await eventually(lambda: _status(kube, observedGeneration=2))
        await asyncio.sleep(0.2)  # web-1 is left alone while web-2 terminates
        assert await terminating() == ["web-2"] and len(await kube.names()) == 3
        await kube.finish_deletion("web-2")
        assert await eventually(terminating, what="web-1 terminating") == ["web-1"]
        await kube.finish_deletion("web-1")
        await eventually(lambda: _names_are(kube, "web-0"))
        await eventually(lambda: _status(kube, replicas=1, readyReplicas=1, currentReplicas=1, updatedReplicas=1))
        assert sorted(await kube.claim_map()) == ["www-web-0", "www-web-1", "www-web-2"]  # claims stay
        messages = await kube.event_messages()
        deletes = [m for m in messages if m.startswith("delete Pod")]
        assert deletes == ["delete Pod web-2 in StatefulSet web successful",
                           "delete Pod web-1 in StatefulSet web successful"]


async def test_parallel_creates_and_deletes_all_at_once() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.create_set(sts_manifest("web", 4, podManagementPolicy="Parallel"))
        await eventually(lambda: _names_are(kube, "web-0", "web-1", "web-2", "web-3"), what="4 pods, none ready")
        assert len(await kube.claim_map()) == 4
        await eventually(lambda: _status(kube, replicas=4, readyReplicas=0))
        for name in await kube.names():
            await kube.bind(name)
        await kube.patch_set("web", {"spec": {"replicas": 1}})

        async def terminating() -> list[str]:
            return sorted(n for n, p in (await kube.pod_map()).items() if p["metadata"].get("deletionTimestamp"))

        # Not ready, and still all three go at once: Parallel does not wait.
        assert await eventually(lambda: _all_three(terminating)) == ["web-1", "web-2", "web-3"]


async def _all_three(probe: object) -> list[str] | None:
    names = await probe()  # type: ignore[operator]
    return names if len(names) == 3 else None


async def test_a_terminating_pod_blocks_its_replacement_and_a_failed_pod_is_replaced() -> None:
    async with InProcessCluster() as cluster, running(StatefulSetController(cluster.client)):
        kube = Kube(cluster)
        async with TwinWatch(kube) as twins:
            async with kube.kubelet(bind=True):
                await kube.create_set(sts_manifest("web", 2))
                await eventually(lambda: _status(kube, readyReplicas=2), what="2 ready")
            first = (await kube.pod_map())["web-1"]["metadata"]["uid"]
            await kube.client.delete(kube.pods, NS, "web-1")  # graceful: the node has to confirm
            await eventually(lambda: _status(kube, currentReplicas=1, updatedReplicas=1))
            await asyncio.sleep(0.2)
            pod = (await kube.pod_map())["web-1"]
            assert pod["metadata"]["uid"] == first and pod["metadata"].get("deletionTimestamp")
            await kube.finish_deletion("web-1")

            async def new_uid() -> str | None:
                pod = (await kube.pod_map()).get("web-1")
                uid = pod["metadata"]["uid"] if pod else None
                return uid if uid not in (None, first) else None

            second = await eventually(new_uid, what="web-1 recreated")
            await kube.bind("web-1")
            await kube.set_phase("web-1", "Failed")  # its containers exited for good
            await eventually(lambda: _gone_or_replaced(kube, "web-1", second), what="failed web-1 replaced")
            await eventually(lambda: _names_are(kube, "web-0", "web-1"))
            await asyncio.sleep(0.1)
        assert twins.twins == []
        assert len(twins.history["web-1"]) == 3 and twins.history["web-1"][:2] == [first, second]
        assert len(twins.history["web-0"]) == 1


async def _gone_or_replaced(kube: Kube, name: str, uid: str) -> bool:
    pod = (await kube.pod_map()).get(name)
    return pod is not None and pod["metadata"]["uid"] != uid


async def test_ordinals_start_and_orphan_adoption() -> None:
    async with InProcessCluster() as cluster:
        kube = Kube(cluster)
        orphan = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "db-5", "labels": {"app": "db"}},
                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}
        await kube.client.create(kube.pods, NS, orphan)
        async with running(StatefulSetController(cluster.client)), kube.kubelet():
            sts = await kube.create_set(sts_manifest("db", 2, app="db", claims=False, ordinals={"start": 5}))
            await eventually(lambda: _names_are(kube, "db-5", "db-6"))
            await eventually(lambda: _status(kube, "db", replicas=2, readyReplicas=2))
        adopted = (await kube.pod_map())["db-5"]
        assert adopted["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
        assert (await kube.pod_map())["db-6"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"
