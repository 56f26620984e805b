"""Node registration and heartbeats: Node and Lease shapes, renewals, pause/resume, re-registration."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kubelet_helpers import ValidatingClient, condition, eventually, validate

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.node import NodeConfig, NodeHeartbeat, healthy_conditions, images_status, node_object
from nanokube.kubelet.runtime.interface import Image


def config(name: str) -> NodeConfig:
    return NodeConfig(name, {"cpu": "2", "memory": "4Gi", "pods": "50"}, labels={"kubernetes.io/hostname": name},
                      addresses=[("InternalIP", "172.30.0.9"), ("Hostname", name)], pod_cidr="10.42.9.0/24",
                      node_info={"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "fake://0.1.0",
                                 "kernelVersion": "6.1", "kubeProxyVersion": "", "kubeletVersion": "v1.37.0",
                                 "machineID": "", "operatingSystem": "linux", "osImage": "x", "systemUUID": ""})


@asynccontextmanager
async def heartbeat(*names: str) -> AsyncIterator[tuple[InProcessCluster, NodeHeartbeat]]:
    async with InProcessCluster() as cluster:
        beat = NodeHeartbeat(ValidatingClient(cluster.client), lease_interval=0.05, status_interval=0.1)
        for name in names:
            beat.add(config(name))
        stop = asyncio.Event()
        task = asyncio.create_task(beat.run(stop=stop))
        try:
            await asyncio.wait_for(beat.all_registered.wait(), 10)
            yield cluster, beat
        finally:
            stop.set()
            await task


def test_healthy_conditions_keep_transition_times() -> None:
    before = healthy_conditions("T0")
    assert [c["type"] for c in before] == ["NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure",
                                           "Ready"]
    after = healthy_conditions("T1", before)
    assert all(c["lastHeartbeatTime"] == "T1" and c["lastTransitionTime"] == "T0" for c in after)
    unknown = [dict(c, status="Unknown") if c["type"] == "Ready" else c for c in before]
    ready = next(c for c in healthy_conditions("T2", unknown) if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "T2"


def test_node_object() -> None:
    obj = node_object(config("n"))
    assert obj["spec"] == {"podCIDR": "10.42.9.0/24", "podCIDRs": ["10.42.9.0/24"]}
    assert obj["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] == "0"


async def test_registration_status_and_lease_renewals() -> None:
    async with heartbeat("n1", "n2") as (cluster, _):
        nodes = cluster.resource("", "v1", "nodes")
        leases = cluster.resource("coordination.k8s.io", "v1", "leases")
        node = await cluster.client.get(nodes, "", "n1")
        validate(node)
        assert node["status"]["capacity"]["pods"] == "50" and node["status"]["allocatable"]["memory"] == "4Gi"
        assert condition(node, "Ready")["status"] == "True"  # type: ignore[index]
        lease = await cluster.client.get(leases, "kube-node-lease", "n1")
        validate(lease)
        assert lease["spec"]["leaseDurationSeconds"] == 40

        async def renewed() -> bool:
            fresh = await cluster.client.get(leases, "kube-node-lease", "n1")
            return fresh["spec"]["renewTime"] > lease["spec"]["renewTime"]

        await eventually(renewed, what="a renewal")
        heartbeat_time = condition(node, "Ready")["lastHeartbeatTime"]  # type: ignore[index]

        async def reported() -> bool:
            fresh = await cluster.client.get(nodes, "", "n1")
            return condition(fresh, "Ready")["lastHeartbeatTime"] > heartbeat_time  # type: ignore[index]

        await eventually(reported, timeout=5, what="a status report")


async def test_pause_and_resume() -> None:
    async with heartbeat("n1", "n2") as (cluster, beat):
        leases = cluster.resource("coordination.k8s.io", "v1", "leases")
        beat.pause("n1")
        await asyncio.sleep(0.1)
        frozen = (await cluster.client.get(leases, "kube-node-lease", "n1"))["spec"]["renewTime"]
        other = (await cluster.client.get(leases, "kube-node-lease", "n2"))["spec"]["renewTime"]

        async def other_renewed() -> bool:
            return (await cluster.client.get(leases, "kube-node-lease", "n2"))["spec"]["renewTime"] > other

        await eventually(other_renewed, what="n2 renewing")
        assert (await cluster.client.get(leases, "kube-node-lease", "n1"))["spec"]["renewTime"] == frozen
        beat.resume("n1")

        async def back() -> bool:
            return (await cluster.client.get(leases, "kube-node-lease", "n1"))["spec"]["renewTime"] > frozen

        await eventually(back, what="n1 renewing again")


async def test_an_existing_node_is_taken_over_and_a_deleted_lease_recreated() -> None:
    async with InProcessCluster() as cluster:
        nodes = cluster.resource("", "v1", "nodes")
        leases = cluster.resource("coordination.k8s.io", "v1", "leases")
        await cluster.client.create(nodes, "", {"metadata": {"name": "n1"}})
        gone: list[str] = []
        beat = NodeHeartbeat(cluster.client, lease_interval=0.05, status_interval=0.05, on_gone=gone.append)
        beat.add(config("n1"))
        stop = asyncio.Event()
        task = asyncio.create_task(beat.run(stop=stop))
        await asyncio.wait_for(beat.all_registered.wait(), 10)
        assert condition(await cluster.client.get(nodes, "", "n1"), "Ready") is not None
        await cluster.client.delete(leases, "kube-node-lease", "n1")

        async def lease_back() -> bool:
            try:
                return bool(await cluster.client.get(leases, "kube-node-lease", "n1"))
            except Exception:
                return False

        await eventually(lease_back, what="the lease recreated")
        await cluster.client.delete(nodes, "", "n1")
        await eventually(lambda: _true(gone == ["n1"]), what="the node reported gone")
        assert "n1" not in beat
        stop.set()
        await task


async def _true(value: bool) -> bool:
    return value


def test_images_status_lists_the_largest_by_digest_and_tag() -> None:
    images = [Image(f"sha256:{n}", (f"x/img{n}:v1",), (f"x/img{n}@sha256:{n}",), size=n) for n in range(60)]
    status = images_status(images)
    assert len(status) == 50 and status[0] == {"names": ["x/img59@sha256:59", "x/img59:v1"], "sizeBytes": 59}
    assert [s["sizeBytes"] for s in status] == list(range(59, 9, -1))
    assert images_status([Image("sha256:bare", size=3)]) == [{"names": ["sha256:bare"], "sizeBytes": 3}]


async def test_the_node_reports_its_images_and_their_changes() -> None:
    images = [Image("sha256:a", ("busybox:1",), ("busybox@sha256:a",), size=100)]

    async def listed() -> list[Image]:
        return list(images)

    async with InProcessCluster() as cluster:
        beat = NodeHeartbeat(ValidatingClient(cluster.client), lease_interval=0.05, status_interval=0.1)
        beat.add(dataclasses.replace(config("img"), images=listed))
        stop = asyncio.Event()
        task = asyncio.create_task(beat.run(stop=stop))
        await asyncio.wait_for(beat.all_registered.wait(), 10)
        nodes = cluster.resource("", "v1", "nodes")

        async def reported() -> list[dict[str, object]] | None:
            node = await cluster.client.get(nodes, "", "img")
            return (node.get("status") or {}).get("images")

        assert await eventually(reported) == [{"names": ["busybox@sha256:a", "busybox:1"], "sizeBytes": 100}]
        images.append(Image("sha256:b", ("python:3",), (), size=500))

        async def both() -> list[dict[str, object]] | None:
            found = await reported()
            return found if found and len(found) == 2 else None

        assert [i["names"] for i in await eventually(both)] == [["python:3"], ["busybox@sha256:a", "busybox:1"]]
        stop.set()
        await task
