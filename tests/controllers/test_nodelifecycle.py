"""A node that stops renewing its Lease turns Unknown, is tainted, and its Pods are evicted and removed."""

from __future__ import annotations

import asyncio

from harness import eventually

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleSettings, tolerates
from nanokube.controllers.podgc import PodGCController, PodGCSettings
from nanokube.util.timeutil import rfc3339_micro


def test_toleration_matching() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}], taint)
    assert not tolerates([{"key": "other", "operator": "Exists"}], taint)
    assert not tolerates([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                           "effect": "NoSchedule"}], taint)
    assert tolerates([{"key": "k", "value": "v", "effect": "NoSchedule"}], {"key": "k", "value": "v",
                                                                             "effect": "NoSchedule"})
    assert not tolerates([{"key": "k", "value": "w"}], {"key": "k", "value": "v", "effect": "NoSchedule"})


async def test_silent_node_is_tainted_and_its_pods_go() -> None:
    async with InProcessCluster() as cluster:
        client = cluster.client
        nodes = cluster.resource("", "v1", "nodes")
        leases = cluster.resource("coordination.k8s.io", "v1", "leases")
        pods = cluster.resource("", "v1", "pods")
        await client.create(nodes, "", {"metadata": {"name": "n1"}, "status": {}})
        await client.patch(nodes, "", "n1", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2020-01-01T00:00:00Z"}]}},
            subresource="status")
        await client.create(leases, "kube-node-lease", {"metadata": {"name": "n1"}, "spec": {
            "holderIdentity": "n1", "renewTime": rfc3339_micro(), "leaseDurationSeconds": 40}})
        # One pod tolerates unreachable nodes for 1 s, one not at all (explicit empty tolerations would be
        # defaulted to 300 s, so give a toleration for something else).
        for name, tolerations in (("brief", [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                               "effect": "NoExecute", "tolerationSeconds": 1}]),
                                  ("forever", [{"operator": "Exists"}])):
            await client.create(pods, "default", {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 1,
                "tolerations": tolerations, "containers": [{"name": "c", "image": "x"}]}})
            await client.bind("default", name, "n1")
        stop = asyncio.Event()
        lifecycle = NodeLifecycleController(client, NodeLifecycleSettings(grace_period=1.0, monitor_period=0.2))
        podgc = PodGCController(client, PodGCSettings(period=0.2))
        tasks = [asyncio.create_task(c.run(stop=stop)) for c in (lifecycle, podgc)]

        async def tainted() -> bool:
            node = await client.get(nodes, "", "n1")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            keys = {(t["key"], t["effect"]) for t in node["spec"].get("taints", [])}
            return ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in keys

        await eventually(tainted, timeout=15)

        async def brief_gone() -> bool:
            names = {p["metadata"]["name"] for p in (await client.list(pods, "default")).items}
            return names == {"forever"}

        await eventually(brief_gone, timeout=15)
        stop.set()
        await asyncio.gather(*tasks)
