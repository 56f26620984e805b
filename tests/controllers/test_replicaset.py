"""ReplicaSets and ReplicationControllers keep their pods: scale up and down, adopt and release, replace, status."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from test_deployment_helpers import NS, Kube, eventually, replicaset_manifest, running, template

from nanokube.api.errors import ApiError
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.replicaset import (
    Expectations,
    ReplicaSetController,
    WrittenStatus,
    calculate_status,
    pods_to_delete,
    slow_start_batch,
)
from nanokube.util.timeutil import now, rfc3339


async def _status(kube: Kube, name: str, **want: int) -> bool:
    status = (await kube.get("replicasets", name)).get("status") or {}
    return all(status.get(k, 0) == v for k, v in want.items())


async def test_scale_up_creates_owned_pods_and_counts_them() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        rs = await kube.client.create(kube.replicasets, NS, replicaset_manifest("web", 3))
        pods = await eventually(lambda: _n_pods(kube, "app=web", 3), what="3 pods")
        for pod in pods:
            assert pod["metadata"]["name"].startswith("web-") and len(pod["metadata"]["name"]) == len("web-") + 5
            assert pod["metadata"]["ownerReferences"] == [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
            assert pod["spec"]["containers"][0]["image"] == "nginx:1.25"
        await eventually(lambda: _status(kube, "web", replicas=3, fullyLabeledReplicas=3, readyReplicas=0,
                                         availableReplicas=0, observedGeneration=1))
        assert await kube.mark_ready("app=web") == 3
        await eventually(lambda: _status(kube, "web", replicas=3, readyReplicas=3, availableReplicas=3))
        messages = await eventually(lambda: _created_events(kube, "web", 3))
        assert sorted(messages) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
        await asyncio.sleep(0.2)  # nothing more happens once the count is right
        assert len(await kube.list_pods("app=web")) == 3


async def _n_pods(kube: Kube, selector: str, n: int) -> list[dict] | None:
    pods = await kube.list_pods(selector)
    return pods if len(pods) == n else None


async def _count_is(kube: Kube, selector: str, n: int) -> bool:
    return len(await kube.list_pods(selector)) == n


async def _created_events(kube: Kube, name: str, n: int) -> list[str] | None:
    messages = [m for m in await kube.events_for(name) if m.startswith("Created pod: ")]
    return messages if len(messages) == n else None


async def test_scale_down_deletes_not_ready_pods_first() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.client.create(kube.replicasets, NS, replicaset_manifest("web", 3))
        pods = await eventually(lambda: _n_pods(kube, "app=web", 3))
        ready = pods[:2]
        for pod in ready:
            await kube.set_ready(pod)
        await eventually(lambda: _status(kube, "web", readyReplicas=2))
        await kube.client.patch(kube.replicasets, NS, "web", {"spec": {"replicas": 2}})
        left = await eventually(lambda: _n_pods(kube, "app=web", 2))
        assert sorted(p["metadata"]["name"] for p in left) == sorted(p["metadata"]["name"] for p in ready)
        await eventually(lambda: _status(kube, "web", replicas=2, readyReplicas=2, observedGeneration=2))
        await kube.client.patch(kube.replicasets, NS, "web", {"spec": {"replicas": 0}})
        await eventually(lambda: _count_is(kube, "app=web", 0))
        await eventually(lambda: _status(kube, "web", replicas=0, readyReplicas=0))


async def test_deleted_pod_is_replaced() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.client.create(kube.replicasets, NS, replicaset_manifest("web", 2))
        pods = await eventually(lambda: _n_pods(kube, "app=web", 2))
        gone = pods[0]["metadata"]["name"]
        await kube.client.delete(kube.pods, NS, gone)
        now_pods = await eventually(lambda: _n_pods_without(kube, gone))
        assert len(now_pods) == 2


async def _n_pods_without(kube: Kube, name: str) -> list[dict] | None:
    pods = await kube.list_pods("app=web")
    return pods if len(pods) == 2 and name not in {p["metadata"]["name"] for p in pods} else None


async def test_adopts_orphans_and_releases_pods_that_stop_matching() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        orphan = {"metadata": {"name": "stray", "labels": {"app": "web"}}, "spec": template()["spec"]}
        await kube.client.create(kube.pods, NS, orphan)
        rs = await kube.client.create(kube.replicasets, NS, replicaset_manifest("web", 2))
        pods = await eventually(lambda: _n_pods(kube, "app=web", 2))
        assert "stray" in {p["metadata"]["name"] for p in pods}
        stray = await kube.get("pods", "stray")
        assert stray["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        # Relabel it: the ReplicaSet lets go of it and makes another.
        await kube.client.patch(kube.pods, NS, "stray", {"metadata": {"labels": {"app": "debug"}}})

        async def released() -> bool:
            pod = await kube.get("pods", "stray")
            return not pod["metadata"].get("ownerReferences")

        await eventually(released, what="stray released")
        await eventually(lambda: _n_pods(kube, "app=web", 2))
        assert len(await kube.list_pods("app=debug")) == 1


async def test_pods_owned_by_someone_else_are_left_alone() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.client.create(kube.replicasets, NS, replicaset_manifest("other", 1))
        await eventually(lambda: _n_pods(kube, "app=web", 1))
        await kube.client.create(kube.replicasets, NS, replicaset_manifest("web", 2))  # the same selector
        pods = await eventually(lambda: _n_pods(kube, "app=web", 3))
        await asyncio.sleep(0.2)
        owners = sorted(p["metadata"]["ownerReferences"][0]["name"] for p in await kube.list_pods("app=web"))
        assert len(pods) == 3 and owners == ["other", "web", "web"]


async def test_replication_controller() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        rc = await kube.client.create(kube.rcs, NS, {
            "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
            "spec": {"replicas": 2, "template": template("legacy")}})
        pods = await eventually(lambda: _n_pods(kube, "app=legacy", 2))
        ref = pods[0]["metadata"]["ownerReferences"][0]
        assert (ref["apiVersion"], ref["kind"], ref["uid"]) == ("v1", "ReplicationController", rc["metadata"]["uid"])
        await kube.mark_ready("app=legacy")

        async def rc_status() -> bool:
            status = (await kube.get("rcs", "legacy")).get("status") or {}
            return (status.get("replicas"), status.get("readyReplicas"), status.get("availableReplicas"),
                    status.get("observedGeneration")) == (2, 2, 2, 1) and "terminatingReplicas" not in status

        await eventually(rc_status)
        await kube.client.patch(kube.rcs, NS, "legacy", {"spec": {"replicas": 1}})
        await eventually(lambda: _n_pods(kube, "app=legacy", 1))


async def test_terminal_pods_do_not_count() -> None:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.client.create(kube.replicasets, NS, replicaset_manifest("web", 2))
        pods = await eventually(lambda: _n_pods(kube, "app=web", 2))
        await kube.client.patch(kube.pods, NS, pods[0]["metadata"]["name"], {"status": {"phase": "Failed"}},
                                subresource="status")
        await eventually(lambda: _n_pods(kube, "app=web", 2))  # a replacement besides the failed one
        assert len(await kube.list_pods("app=web", active=False)) == 3


# -- pure parts -------------------------------------------------------------------------------------------
def _pod(name: str, *, node: str = "", phase: str = "Pending", ready_ago: float | None = None,
         created_ago: float = 100.0, restarts: int = 0, cost: int | None = None) -> dict:
    t = now()
    pod: dict = {"metadata": {"name": name, "uid": name, "creationTimestamp": rfc3339(t - timedelta(seconds=created_ago))},
                 "spec": {"nodeName": node} if node else {},
                 "status": {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}}
    if ready_ago is not None:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                        "lastTransitionTime": rfc3339(t - timedelta(seconds=ready_ago))}]
    if cost is not None:
        pod["metadata"]["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    return pod


def _victims(pods: list[dict], n: int, related: list[dict] | None = None) -> list[str]:
    return [p["metadata"]["name"] for p in pods_to_delete(pods, related or pods, n)]


def test_deletion_order_follows_kube() -> None:
    running_ready = _pod("ready", node="n1", phase="Running", ready_ago=1000)
    assert _victims([running_ready, _pod("unscheduled")], 1) == ["unscheduled"]
    assert _victims([running_ready, _pod("pending", node="n2")], 1) == ["pending"]
    assert _victims([running_ready, _pod("notready", node="n2", phase="Running")], 1) == ["notready"]
    cheap = _pod("cheap", node="n2", phase="Running", ready_ago=1000, cost=-5)
    assert _victims([running_ready, cheap], 1) == ["cheap"]
    # Doubled up: two siblings on n1, one on n2 — one of the n1 pods goes.
    a, b = _pod("a", node="n1", phase="Running", ready_ago=1000), _pod("b", node="n1", phase="Running", ready_ago=1000)
    c = _pod("c", node="n2", phase="Running", ready_ago=1000)
    assert _victims([c, a, b], 1) in (["a"], ["b"])
    # Ready more recently (by a power of two) goes first; then more restarts; then younger.
    fresh = _pod("fresh", node="n2", phase="Running", ready_ago=10)
    assert _victims([running_ready, fresh], 1, related=[]) == ["fresh"]
    crashy = _pod("crashy", node="n2", phase="Running", ready_ago=1000, restarts=4)
    assert _victims([running_ready, crashy], 1, related=[]) == ["crashy"]
    young = _pod("young", node="n2", phase="Pending", created_ago=5)
    old = _pod("old", node="n3", phase="Pending", created_ago=5000)
    assert _victims([old, young], 1) == ["young"]
    assert _victims([old, young], 5) == ["old", "young"]


def test_status_counts_available_after_min_ready_seconds() -> None:
    rs = {"metadata": {"name": "x", "generation": 1},
          "spec": {"replicas": 2, "minReadySeconds": 10, "template": template()}, "status": {}}
    pods = [_pod("a", phase="Running", ready_ago=30), _pod("b", phase="Running", ready_ago=5)]
    for p in pods:
        p["metadata"]["labels"] = {"app": "web", "extra": "1"}
    status = calculate_status(rs, pods, 0, None)
    assert (status["replicas"], status["fullyLabeledReplicas"], status["readyReplicas"],
            status["availableReplicas"], status["terminatingReplicas"]) == (2, 2, 2, 1, 0)
    pods[1]["metadata"]["labels"] = {"other": "x"}
    assert calculate_status(rs, pods, None, None)["fullyLabeledReplicas"] == 1


def test_replica_failure_condition_comes_and_goes() -> None:
    rs = {"metadata": {"name": "x"}, "spec": {"replicas": 3, "template": template()}, "status": {}}
    status = calculate_status(rs, [], None, ApiError('pods "x-" is forbidden: exceeded quota'))
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "ReplicaFailure", "True", "FailedCreate", 'pods "x-" is forbidden: exceeded quota')
    rs["status"] = status
    assert "conditions" not in calculate_status(rs, [], None, None)


async def test_slow_start_batches_stop_at_the_first_failing_batch() -> None:
    calls = 0

    async def create() -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise ApiError("boom")

    done, error = await slow_start_batch(10, 1, create)
    assert (done, calls, str(error)) == (6, 7, "boom")  # batches of 1, 2, 4; the third had one failure
    calls = 0
    done, error = await slow_start_batch(3, 1, create)
    assert (done, error, calls) == (3, None, 3)


def test_expectations() -> None:
    exp = Expectations()
    assert exp.satisfied("k")
    exp.expect_creations("k", 2)
    assert not exp.satisfied("k")
    exp.creation_observed("k")
    assert not exp.satisfied("k")
    exp.creation_observed("k")
    assert exp.satisfied("k")
    exp.expect_deletions("k", ["ns/a", "ns/b"])
    exp.deletion_observed("k", "ns/a")
    exp.deletion_observed("k", "ns/a")  # seen twice (update with deletionTimestamp, then delete): counted once
    assert not exp.satisfied("k")
    exp.deletion_observed("k", "ns/b")
    assert exp.satisfied("k")
    expired = Expectations(ttl=-1)
    expired.expect_creations("k", 1)
    assert expired.satisfied("k")


def test_written_status_echoes_and_stale_caches() -> None:
    written = WrittenStatus()
    assert written.consistent("k", {"replicas": 1}) and not written.is_echo("k", {"replicas": 1})
    written.remember("k", {"replicas": 0})
    assert written.is_echo("k", {"replicas": 0})
    assert not written.consistent("k", {"replicas": 1})  # the cache lags our last write: write anyway
    written.forget("k")
    assert written.consistent("k", {"replicas": 1})
