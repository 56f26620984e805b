"""DaemonSet updates against an in-process cluster: RollingUpdate within maxUnavailable, surging with maxSurge,
minReadySeconds, OnDelete, and the ControllerRevision history behind them."""

from __future__ import annotations

import asyncio
from typing import Any

from test_daemonset_helpers import NS, Kube, eventually, is_ready, running

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.daemonset import DaemonSetController

NODES = ("n1", "n2", "n3", "n4")


async def _rolled_out(kube: Kube, name: str = "agent") -> bool:
    """What ``kubectl rollout status ds/NAME`` waits for."""
    ds = await kube.ds(name)
    status = ds.get("status") or {}
    desired = status.get("desiredNumberScheduled", 0)
    return (status.get("observedGeneration", 0) >= ds["metadata"]["generation"] and desired > 0
            and status.get("updatedNumberScheduled", 0) == desired and status.get("numberAvailable", 0) == desired)


async def _start(kube: Kube, nodes: tuple[str, ...] = NODES, **spec: Any) -> None:
    for name in nodes:
        await kube.add_node(name)
    await kube.create_ds("agent", **spec)
    async with kube.kubelet():
        await eventually(lambda: _rolled_out(kube), what="the first rollout")


async def _set_image(kube: Kube, image: str) -> None:
    await kube.client.patch(kube.daemonsets, NS, "agent", {"spec": {"template": {"spec": {
        "containers": [{"name": "agent", "image": image}]}}}})


def _image(pod: dict) -> str:
    return str(pod["spec"]["containers"][0]["image"])


async def _snapshot(kube: Kube) -> dict[str, list[dict]]:
    """Live (not terminating) pods by node."""
    return await kube.pods_by_node()


async def _terminating(kube: Kube, n: int) -> list[dict] | None:
    pods = [p for p in await kube.list_pods(live=False) if p["metadata"].get("deletionTimestamp")]
    return pods if len(pods) == n else None


async def _roll_by_hand(kube: Kube, nodes: tuple[str, ...], image: str) -> list[dict[str, list[dict]]]:
    """Step the scheduler and kubelet until every node runs ``image`` and the rollout is done; return the
    pods by node seen between the steps."""
    seen = []
    for _ in range(500):
        seen.append(await _snapshot(kube))
        by_node = seen[-1]
        if (set(by_node) == set(nodes) and all(len(p) == 1 and _image(p[0]) == image and is_ready(p[0])
                                               for p in by_node.values()) and await _rolled_out(kube)):
            return seen
        await kube.step()
        await asyncio.sleep(0.02)
    raise AssertionError(f"rollout to {image} did not finish: {seen[-1]}")


async def test_rolling_update_keeps_within_max_unavailable() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await _start(kube, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
        await _set_image(kube, "agent:2")
        # Two old pods go at once, and no third while their replacements are not available.
        await eventually(lambda: _terminating(kube, 2), what="two old pods deleted")
        await asyncio.sleep(0.2)
        assert await _terminating(kube, 2)
        live = await _snapshot(kube)
        assert sorted(_image(p) for pods in live.values() for p in pods) == ["agent:1", "agent:1"]
        seen = await _roll_by_hand(kube, NODES, "agent:2")
        for by_node in seen:
            ready_nodes = [n for n, pods in by_node.items() if any(is_ready(p) for p in pods)]
            assert len(NODES) - len(ready_nodes) <= 2, by_node
        deleted = [m for r, m in await kube.events_for("agent") if r == "SuccessfulDelete"]
        assert len(deleted) == 4 and all(m.startswith("Deleted pod: agent-") for m in deleted)


async def test_rolling_update_one_node_at_a_time_by_default() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await _start(kube, ("n1", "n2", "n3"))
        ds = await kube.ds("agent")
        assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        await _set_image(kube, "agent:2")
        await eventually(lambda: _terminating(kube, 1))
        await asyncio.sleep(0.2)
        assert await _terminating(kube, 1)
        await eventually(lambda: _status_is(kube, observedGeneration=2, updatedNumberScheduled=0,
                                            desiredNumberScheduled=3))
        seen = await _roll_by_hand(kube, ("n1", "n2", "n3"), "agent:2")
        assert all(sum(1 for pods in s.values() if any(is_ready(p) for p in pods)) >= 2 for s in seen)


async def _status_is(kube: Kube, **want: int) -> bool:
    status = (await kube.ds("agent")).get("status") or {}
    return all(status.get(k, 0) == v for k, v in want.items())


async def test_max_surge_starts_the_new_pod_before_the_old_one_goes() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        nodes = ("n1", "n2", "n3")
        await _start(kube, nodes, updateStrategy={"type": "RollingUpdate",
                                                  "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
        await _set_image(kube, "agent:2")

        async def surged() -> dict | None:
            by_node = await _snapshot(kube)
            doubled = {n: pods for n, pods in by_node.items() if len(pods) == 2}
            return doubled or None
        doubled = await eventually(surged, what="a new pod beside an old one")
        await asyncio.sleep(0.2)  # a single surge pod at a time, and no old pod goes before it is ready
        assert len(doubled) == 1 and await surged() == doubled
        assert [p for p in await kube.list_pods(live=False) if p["metadata"].get("deletionTimestamp")] == []
        seen = await _roll_by_hand(kube, nodes, "agent:2")
        for by_node in seen:
            assert all(any(is_ready(p) for p in pods) for pods in by_node.values()), by_node
            assert sum(1 for pods in by_node.values() if len(pods) > 1) <= 1, by_node


async def test_min_ready_seconds_holds_back_availability() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.add_node("n1")
        await kube.create_ds("agent", minReadySeconds=1)
        await eventually(lambda: kube.pods_by_node())
        await kube.step()
        await eventually(lambda: _status_is(kube, numberReady=1, numberAvailable=0, numberUnavailable=1))
        await eventually(lambda: _status_is(kube, numberReady=1, numberAvailable=1, numberUnavailable=0),
                         what="the pod counted available after minReadySeconds")


async def test_on_delete_replaces_only_deleted_pods() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await _start(kube, ("n1", "n2"), updateStrategy={"type": "OnDelete"})
        await _set_image(kube, "agent:2")
        await eventually(lambda: _status_is(kube, observedGeneration=2, updatedNumberScheduled=0,
                                            desiredNumberScheduled=2, numberAvailable=2))
        await asyncio.sleep(0.2)
        assert sorted(_image(p) for p in await kube.list_pods()) == ["agent:1", "agent:1"]
        victim = (await _snapshot(kube))["n1"][0]
        await kube.client.delete(kube.pods, NS, victim["metadata"]["name"])
        async with kube.kubelet():
            async def replaced() -> bool:
                by_node = await _snapshot(kube)
                return [_image(p) for p in by_node.get("n1", [])] == ["agent:2"] and \
                    [_image(p) for p in by_node.get("n2", [])] == ["agent:1"]
            await eventually(replaced, what="n1 on the new template, n2 untouched")
            await eventually(lambda: _status_is(kube, updatedNumberScheduled=1, numberAvailable=2))


async def test_revisions_record_templates_and_renumber_on_rollback() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await _start(kube, ("n1",))
        ds = await kube.ds("agent")
        (first,) = await kube.revisions_of()
        hash1 = first["metadata"]["labels"]["controller-revision-hash"]
        assert first["metadata"]["name"] == f"agent-{hash1}" and first["revision"] == 1
        assert first["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash1}
        assert first["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
        template = dict(ds["spec"]["template"])
        assert first["data"] == {"spec": {"template": {**template, "$patch": "replace"}}}
        assert (await kube.list_pods())[0]["metadata"]["labels"]["controller-revision-hash"] == hash1

        await _set_image(kube, "agent:2")
        await _roll_by_hand(kube, ("n1",), "agent:2")
        revisions = await kube.revisions_of()
        assert len(revisions) == 2 and (revisions[0]["metadata"]["name"], revisions[0]["revision"]) == (
            f"agent-{hash1}", 1)
        second = revisions[1]
        hash2 = second["metadata"]["labels"]["controller-revision-hash"]
        assert second["revision"] == 2 and hash2 != hash1

        await _set_image(kube, "agent:1")  # a rollback reuses the first revision under a new number
        await _roll_by_hand(kube, ("n1",), "agent:1")
        revisions = await kube.revisions_of()
        assert [(r["metadata"]["name"], r["revision"]) for r in revisions] == [
            (f"agent-{hash2}", 2), (f"agent-{hash1}", 3)]
        assert (await kube.list_pods())[0]["metadata"]["labels"]["controller-revision-hash"] == hash1


async def test_revision_history_limit_prunes_revisions_no_pod_runs() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await _start(kube, ("n1", "n2"), revisionHistoryLimit=1)
        for image in ("agent:2", "agent:3", "agent:4"):
            await _set_image(kube, image)
            await _roll_by_hand(kube, ("n1", "n2"), image)

        async def pruned() -> list | None:
            revisions = await kube.revisions_of()
            return revisions if len(revisions) == 2 else None
        revisions = await eventually(pruned, what="one old revision kept")
        assert [r["revision"] for r in revisions] == [3, 4]
