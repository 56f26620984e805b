"""The agent core with one node, as the real agent runs it: its own field selector, orphans removed at start."""

from __future__ import annotations

import asyncio

from kubelet_helpers import ValidatingClient, condition, eventually, pod

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.agent import AgentSettings, NodeAgent, needs_sync
from nanokube.kubelet.node import NodeConfig
from nanokube.kubelet.runtime.fake import FakeRuntime
from nanokube.kubelet.runtime.interface import PodSandboxConfig, PodSandboxMetadata
from nanokube.kubelet.sync import PodSyncer, SyncSettings


def node_config() -> NodeConfig:
    info = {"architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "fake://0.1.0",
            "kernelVersion": "6.1", "kubeProxyVersion": "", "kubeletVersion": "v1.37.0", "machineID": "m",
            "operatingSystem": "linux", "osImage": "x", "systemUUID": "u"}
    return NodeConfig("solo", {"cpu": "2", "memory": "2Gi", "pods": "10"}, addresses=[("InternalIP", "192.0.2.5")],
                      pod_cidr="10.42.7.0/24", node_info=info)


async def test_one_node_agent_runs_its_pods_and_removes_orphans() -> None:
    async with InProcessCluster() as cluster:
        client = ValidatingClient(cluster.client)
        pods = cluster.resource("", "v1", "pods")
        agent = NodeAgent(client, AgentSettings(pod_field_selector="spec.nodeName=solo", lease_interval=0.1,
                                                status_interval=0.2))
        runtime = FakeRuntime(pod_cidr="10.42.7.0/24")
        leftover = await runtime.run_pod_sandbox(PodSandboxConfig(PodSandboxMetadata("gone", "default", "ghost")))
        syncer = PodSyncer(SyncSettings("solo", ("192.0.2.5",)), runtime, agent.status)
        agent.add_node(node_config(), runtime, syncer)
        await client.create(pods, "default", pod("mine", "solo"))
        await client.create(pods, "default", pod("theirs", "other"))
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop=stop))

        async def running() -> dict | None:
            found = await client.get(pods, "default", "mine")
            ready = condition(found, "Ready")
            return found if ready is not None and ready["status"] == "True" else None

        found = await eventually(running, what="the pod Running on the one node")
        assert found["status"]["podIP"].startswith("10.42.7.") and found["status"]["hostIP"] == "192.0.2.5"

        async def orphan_removed() -> bool:
            return all(s.id != leftover for s in await runtime.list_pod_sandboxes())

        await eventually(orphan_removed, what="the orphaned sandbox removed")
        assert "default/theirs" not in agent.pods.cache  # outside the field selector
        stop.set()
        await task


def test_needs_sync_ignores_status_echoes() -> None:
    before = {**pod("p", "n"), "status": {"phase": "Pending"}}
    before["metadata"].update(uid="u", generation=1)
    echo = {**before, "status": {"phase": "Running"}}
    assert not needs_sync(echo, before)
    deleting = {**before, "metadata": {**before["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert needs_sync(deleting, before)
    changed = {**before, "metadata": {**before["metadata"], "generation": 2}}
    assert needs_sync(changed, before)
    relabelled = {**before, "metadata": {**before["metadata"], "labels": {"tier": "new"}}}
    assert needs_sync(relabelled, before)  # a downwardAPI volume shows the labels
    gated = {**before, "spec": {**before["spec"], "readinessGates": [{"conditionType": "x"}]}}
    assert needs_sync({**gated, "status": {"conditions": [{"type": "x", "status": "True"}]}}, gated)
