"""Deployments roll out: a ReplicaSet per template, RollingUpdate within maxSurge/maxUnavailable, Recreate,
and the status and conditions ``kubectl rollout status`` reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from test_deployment_helpers import (
    NS,
    Kube,
    condition,
    deployment_manifest,
    eventually,
    rollout_status,
    running,
)

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.deployment import DeploymentController
from nanokube.controllers.replicaset import ReplicaSetController

JSON = dict


@contextlib.asynccontextmanager
async def cluster_with_controllers() -> AsyncIterator[Kube]:
    async with InProcessCluster() as cluster, running(ReplicaSetController(cluster.client),
                                                      DeploymentController(cluster.client)):
        yield Kube(cluster)


async def rolled_out(kube: Kube, name: str = "web") -> JSON | None:
    """The Deployment once ``kubectl rollout status`` would say it is done, playing kubelet meanwhile."""
    await kube.mark_ready()
    d = await kube.get("deployments", name)
    return d if rollout_status(d)[1] else None


async def set_image(kube: Kube, image: str, name: str = "web") -> None:
    """What ``kubectl set image`` sends."""
    await kube.client.patch(kube.deployments, NS, name, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": image}]}}}}, patch_type="strategic")


async def test_create_makes_a_hashed_replicaset_and_reports_progress() -> None:
    async with cluster_with_controllers() as kube:
        d = await kube.client.create(kube.deployments, NS, deployment_manifest("web", 3))
        (rs,) = await eventually(kube.list_rs, what="a ReplicaSet")
        name, pod_hash = rs["metadata"]["name"], rs["metadata"]["labels"]["pod-template-hash"]
        assert name == f"web-{pod_hash}" and 1 <= len(pod_hash) <= 10
        assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}}
        assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
        assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                      "uid": d["metadata"]["uid"], "controller": True,
                                                      "blockOwnerDeletion": True}]
        annotations = rs["metadata"]["annotations"]
        assert annotations == {"deployment.kubernetes.io/revision": "1",
                               "deployment.kubernetes.io/desired-replicas": "3",
                               "deployment.kubernetes.io/max-replicas": "4"}
        pods = await eventually(lambda: _n(kube.list_pods(f"pod-template-hash={pod_hash}"), 3))
        assert all(p["metadata"]["name"].startswith(f"{name}-") for p in pods)
        d = await kube.get("deployments", "web")
        assert rollout_status(d)[1] is False
        d = await eventually(lambda: rolled_out(kube), what="rolled out")
        status = d["status"]
        assert (status["observedGeneration"], status["replicas"], status["updatedReplicas"],
                status["readyReplicas"], status["availableReplicas"]) == (1, 3, 3, 3, 3)
        assert "unavailableReplicas" not in status
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        available, progressing = condition(d, "Available"), condition(d, "Progressing")
        assert available and progressing
        assert (available["status"], available["reason"], available["message"]) == (
            "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        assert (progressing["status"], progressing["reason"], progressing["message"]) == (
            "True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
        assert rollout_status(d) == ('deployment "web" successfully rolled out', True)
        assert f"Scaled up replica set {name} from 0 to 3" in await kube.events_for("web")


async def _n(listing: object, n: int) -> list[JSON] | None:
    items = await listing  # type: ignore[misc]
    return items if len(items) == n else None


async def test_rolling_update_stays_within_surge_and_unavailability() -> None:
    async with cluster_with_controllers() as kube:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 4, strategy=strategy))
        first = await eventually(lambda: rolled_out(kube))
        await set_image(kube, "nginx:1.26")
        lines: list[str] = []
        for _ in range(400):
            rses = await kube.list_rs()
            assert sum(r["spec"]["replicas"] for r in rses) <= 5, "more than replicas + maxSurge"
            pods = await kube.list_pods("app=web")
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in (p.get("status") or {}).get("conditions") or [])]
            assert len(ready) >= 3, "fewer than replicas - maxUnavailable available"
            d = await kube.get("deployments", "web")
            line, done = rollout_status(d)
            if not lines or lines[-1] != line:
                lines.append(line)
            if done and d["metadata"]["generation"] == 2:
                break
            # Play a slow kubelet: one new pod at a time becomes ready.
            unready = [p for p in pods if p not in ready]
            if unready:
                await kube.set_ready(unready[0])
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"rollout did not finish: {lines}")
        assert lines[-1] == 'deployment "web" successfully rolled out'
        assert any("new replicas have been updated" in line for line in lines)
        rses = {r["metadata"]["name"]: r for r in await kube.list_rs()}
        assert len(rses) == 2
        new = next(r for r in rses.values() if r["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26")
        old = next(r for r in rses.values() if r is not new)
        assert (new["spec"]["replicas"], old["spec"]["replicas"]) == (4, 0)
        assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert first["metadata"]["uid"] == d["metadata"]["uid"]
        progressing = condition(d, "Progressing")
        assert progressing and progressing["message"] == f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.'
        events = await kube.events_for("web")
        assert f"Scaled up replica set {new['metadata']['name']} from 0 to 1" in events
        assert f"Scaled down replica set {old['metadata']['name']} from 4 to 3" in events


async def test_recreate_removes_old_pods_before_creating_new_ones() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 3, strategy={"type": "Recreate"}))
        (old_rs,) = await eventually(kube.list_rs)
        await eventually(lambda: rolled_out(kube))
        old_hash = old_rs["metadata"]["labels"]["pod-template-hash"]
        await set_image(kube, "nginx:1.26")
        for _ in range(400):
            rses = await kube.list_rs()
            new = [r for r in rses if r["metadata"]["name"] != old_rs["metadata"]["name"]]
            old_pods = await kube.list_pods(f"pod-template-hash={old_hash}")
            if new and new[0]["spec"]["replicas"] > 0:
                assert not old_pods, "new pods asked for while old ones still run"
            d = await kube.get("deployments", "web")
            if rollout_status(d)[1] and d["metadata"]["generation"] == 2:
                break
            await kube.mark_ready()
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("recreate did not finish")
        assert {r["metadata"]["name"]: r["spec"]["replicas"] for r in await kube.list_rs()} == {
            old_rs["metadata"]["name"]: 0, new[0]["metadata"]["name"]: 3}


async def test_scaling_a_settled_deployment_resizes_its_replicaset() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 3))
        await eventually(lambda: rolled_out(kube))
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"replicas": 5}})
        d = await eventually(lambda: _rolled_out_with(kube, 5))
        (rs,) = await kube.list_rs()
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "7"  # 25% of 5 rounds up
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert f"Scaled up replica set {rs['metadata']['name']} from 3 to 5" in await kube.events_for("web")
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"replicas": 1}})
        await eventually(lambda: _rolled_out_with(kube, 1))
        assert len(await kube.list_pods("app=web")) == 1


async def _rolled_out_with(kube: Kube, replicas: int) -> JSON | None:
    d = await rolled_out(kube)
    return d if d and d["status"].get("availableReplicas") == replicas == d["status"].get("replicas") else None


async def test_scaling_during_a_rollout_is_proportional() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 10))
        (old,) = await eventually(kube.list_rs)
        await eventually(lambda: rolled_out(kube))
        await set_image(kube, "nginx:bad")  # new pods never become ready
        # maxSurge 3, maxUnavailable 2: the old ReplicaSet goes to 8, the new one to 5, and there it stalls.
        sizes = await eventually(lambda: _sizes(kube, old["metadata"]["name"], (8, 5)), what="8 old, 5 new")
        assert sizes
        await kube.client.patch(kube.deployments, NS, "web", {"spec": {"replicas": 20}})
        # 12 more (20 + 5 surge - 13) split by size: 8 * 25/13 -> 15, 5 * 25/13 -> 10 (kube's documented example).
        await eventually(lambda: _sizes(kube, old["metadata"]["name"], (15, 10)), what="15 old, 10 new")


async def _sizes(kube: Kube, old_name: str, want: tuple[int, int]) -> bool:
    rses = await kube.list_rs()
    if len(rses) != 2:
        return False
    old = next(r for r in rses if r["metadata"]["name"] == old_name)
    new = next(r for r in rses if r["metadata"]["name"] != old_name)
    if new["spec"]["replicas"] == 0:
        return False
    # Only the old ReplicaSet's pods become ready: they are the ones that work.
    await kube.mark_ready(f"pod-template-hash={old['metadata']['labels']['pod-template-hash']}")
    return (old["spec"]["replicas"], new["spec"]["replicas"]) == want


async def test_min_ready_seconds_delays_availability() -> None:
    async with cluster_with_controllers() as kube:
        await kube.client.create(kube.deployments, NS, deployment_manifest("web", 2, minReadySeconds=1))
        await eventually(lambda: _n(kube.list_pods("app=web"), 2))
        await kube.mark_ready()
        (rs,) = await kube.list_rs()
        assert rs["spec"]["minReadySeconds"] == 1
        # Ready now, available only once ready for a full second: nothing else happens meanwhile, so the
        # ReplicaSet controller must come back by itself to count them.
        d = await eventually(lambda: _available(kube, 2), timeout=10)
        assert d["status"]["readyReplicas"] == 2 and rollout_status(d)[1]


async def _available(kube: Kube, n: int) -> JSON | None:
    d = await kube.get("deployments", "web")
    return d if d["status"].get("availableReplicas") == n else None
