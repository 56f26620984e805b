"""The DaemonSet controller against an in-process cluster: one pod per eligible node, placement by selector,
affinity and taints, replacement of deleted and failed pods, status, and revision history."""

from __future__ import annotations

import asyncio

from test_daemonset_helpers import NS, Kube, eventually, is_ready, running

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.daemonset import DaemonSetController, target_node

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


async def _status(kube: Kube, name: str, **want: int) -> dict | None:
    status = (await kube.ds(name)).get("status") or {}
    return status if all(status.get(k, 0) == v for k, v in want.items()) else None


async def _covering(kube: Kube, nodes: set[str], selector: str = "app=agent") -> dict | None:
    """The live pods by node once exactly ``nodes`` have one each."""
    by_node = await kube.pods_by_node(selector)
    if set(by_node) == nodes and all(len(p) == 1 for p in by_node.values()):
        return by_node
    return None


async def test_one_pod_per_node_pinned_by_affinity_with_daemon_tolerations() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        for name in ("n1", "n2", "n3"):
            await kube.add_node(name)
        ds = await kube.create_ds("agent")
        by_node = await eventually(lambda: _covering(kube, {"n1", "n2", "n3"}), what="a pod per node")
        revision = (await eventually(kube.revisions_of))[0]
        hash_ = revision["metadata"]["labels"]["controller-revision-hash"]
        for node, (pod,) in by_node.items():
            meta, spec = pod["metadata"], pod["spec"]
            assert meta["name"].startswith("agent-") and len(meta["name"]) == len("agent-") + 5
            assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                                "uid": ds["metadata"]["uid"], "controller": True,
                                                "blockOwnerDeletion": True}]
            assert meta["labels"] == {"app": "agent", "controller-revision-hash": hash_,
                                      "pod-template-generation": "1"}
            assert not spec.get("nodeName")  # the scheduler binds it
            assert spec["affinity"] == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
            assert spec["tolerations"] == DEFAULT_TOLERATIONS
        await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=3, currentNumberScheduled=3,
                                         numberReady=0, numberAvailable=0, numberUnavailable=3,
                                         updatedNumberScheduled=3, numberMisscheduled=0, observedGeneration=1))
        await kube.step()
        await eventually(lambda: _status(kube, "agent", numberReady=3, numberAvailable=3, numberUnavailable=0))
        names = sorted(p["metadata"]["name"] for (p,) in by_node.values())
        events = await eventually(lambda: _created(kube, 3))
        assert sorted(events) == [f"Created pod: {n}" for n in names]
        await asyncio.sleep(0.2)  # nothing more happens once every node has its pod
        assert len(await kube.list_pods()) == 3


async def _created(kube: Kube, n: int) -> list[str] | None:
    messages = [m for r, m in await kube.events_for("agent") if r == "SuccessfulCreate"]
    return messages if len(messages) == n else None


async def test_node_added_later_gets_a_pod_and_a_deleted_node_loses_its_count() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.add_node("n1")
        await kube.create_ds("agent")
        await eventually(lambda: _covering(kube, {"n1"}))
        await kube.add_node("n2")
        await eventually(lambda: _covering(kube, {"n1", "n2"}), what="a pod on the new node")
        await kube.step()
        await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=2, numberReady=2))
        await kube.client.delete(kube.nodes, "", "n2")
        await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=1, currentNumberScheduled=1))


async def test_node_selector_picks_nodes_and_relabelling_moves_pods() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.add_node("n1", {"disk": "ssd"})
        await kube.add_node("n2", {"disk": "ssd"})
        await kube.add_node("n3", {"disk": "hdd"})
        manifest_spec = {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "agent", "image": "agent:1"}]}
        await kube.client.create(kube.daemonsets, NS, {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": manifest_spec}}})
        await eventually(lambda: _covering(kube, {"n1", "n2"}))
        await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=2, currentNumberScheduled=2))
        await kube.client.patch(kube.nodes, "", "n3", {"metadata": {"labels": {"disk": "ssd"}}})
        await eventually(lambda: _covering(kube, {"n1", "n2", "n3"}), what="a pod on the relabelled node")
        await kube.client.patch(kube.nodes, "", "n1", {"metadata": {"labels": {"disk": None}}})
        await eventually(lambda: _covering(kube, {"n2", "n3"}), what="the pod gone from the unlabelled node")
        await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=2, numberMisscheduled=0))


async def test_required_node_affinity_is_honoured_then_replaced_by_the_node_pin() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.add_node("a1", {"zone": "a"})
        await kube.add_node("b1", {"zone": "b"})
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
        await kube.client.create(kube.daemonsets, NS, {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"affinity": affinity, "containers": [{"name": "agent", "image": "agent:1"}]}}}})
        by_node = await eventually(lambda: _covering(kube, {"b1"}))
        terms = by_node["b1"][0]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b1"]}]}]


async def test_taints_keep_pods_off_unless_tolerated() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.add_node("plain")
        await kube.add_node("gpu", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
        await kube.add_node("cordoned", taints=[{"key": "node.kubernetes.io/unschedulable",
                                                 "effect": "NoSchedule"}])
        await kube.create_ds("agent")
        await kube.create_ds("gpu-agent", app="gpu-agent")
        await kube.client.patch(kube.daemonsets, NS, "gpu-agent", {"spec": {"template": {"spec": {
            "tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]}}}})
        # The default daemon tolerations let both onto a cordoned node; only gpu-agent tolerates the gpu taint.
        await eventually(lambda: _covering(kube, {"plain", "cordoned"}))
        await eventually(lambda: _covering(kube, {"plain", "gpu", "cordoned"}, "app=gpu-agent"))
        await kube.step()
        # A NoSchedule taint added later keeps the pod where it runs; a NoExecute one drives it out.
        await kube.client.patch(kube.nodes, "", "plain", {"spec": {"taints": [
            {"key": "maintenance", "effect": "NoSchedule"}]}})
        await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=1, numberMisscheduled=1))
        assert set(await kube.pods_by_node()) == {"plain", "cordoned"}
        await kube.client.patch(kube.nodes, "", "plain", {"spec": {"taints": [
            {"key": "maintenance", "effect": "NoExecute"}]}})
        async with kube.kubelet():
            await eventually(lambda: _covering(kube, {"cordoned"}), what="the pod driven off by NoExecute")
            await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=1, numberMisscheduled=0))


async def test_deleted_and_failed_pods_are_replaced() -> None:
    async with InProcessCluster() as cluster, running(DaemonSetController(cluster.client)):
        kube = Kube(cluster)
        await kube.add_node("n1")
        await kube.add_node("n2")
        await kube.create_ds("agent")
        async with kube.kubelet():
            first = await eventually(lambda: _covering(kube, {"n1", "n2"}))
            await eventually(lambda: _status(kube, "agent", numberReady=2))
            gone = first["n1"][0]
            await kube.client.delete(kube.pods, NS, gone["metadata"]["name"])
            again = await eventually(lambda: _replaced(kube, "n1", gone), what="a replacement on n1")
            await kube.set_status(again, ready=False, phase="Failed")
            await eventually(lambda: _replaced(kube, "n1", again), what="the failed pod replaced")
            await eventually(lambda: _status(kube, "agent", numberReady=2, numberAvailable=2))
        reasons = [(r, m) for r, m in await kube.events_for("agent") if r == "FailedDaemonPod"]
        assert reasons == [("FailedDaemonPod", f"Found failed daemon pod {NS}/{again['metadata']['name']} on node n1, "
                                               "will try to kill it")]


async def _replaced(kube: Kube, node: str, old: dict) -> dict | None:
    pods = (await kube.pods_by_node()).get(node) or []
    if len(pods) == 1 and pods[0]["metadata"]["uid"] != old["metadata"]["uid"] and is_ready(pods[0]):
        return pods[0]
    return None


async def test_orphan_pod_on_a_node_is_adopted_instead_of_duplicated() -> None:
    async with InProcessCluster() as cluster:
        kube = Kube(cluster)
        await kube.add_node("n1")
        ds = await kube.create_ds("agent", updateStrategy={"type": "OnDelete"})  # no rolling it onto the template
        orphan = await kube.client.create(kube.pods, NS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "handmade", "labels": {"app": "agent"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "agent", "image": "agent:1"}]}})
        async with running(DaemonSetController(cluster.client)):
            async def adopted() -> bool:
                pod = await kube.client.get(kube.pods, NS, "handmade")
                return [r["uid"] for r in pod["metadata"].get("ownerReferences") or []] == [ds["metadata"]["uid"]]
            await eventually(adopted, what="the orphan adopted")
            await eventually(lambda: _status(kube, "agent", desiredNumberScheduled=1, currentNumberScheduled=1,
                                             updatedNumberScheduled=0))
            await asyncio.sleep(0.2)
            assert [p["metadata"]["uid"] for p in await kube.list_pods()] == [orphan["metadata"]["uid"]]
            assert target_node(orphan) == "n1"
