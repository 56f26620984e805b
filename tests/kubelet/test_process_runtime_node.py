"""The process node on an in-process cluster: it registers a Node that says it is not isolated, runs a bound Pod
as a host process on a 127.x address, and keeps the Isolation condition through its own heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubelet_helpers import eventually

from nanokube.client.interface import JSON
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.local import LocalNodeSettings
from nanokube.kubelet.runtime.interface import LogOptions
from nanokube.kubelet.runtime.process_node import ISOLATION_CONDITION, RUNTIME_ANNOTATION, ProcessNode


@pytest.fixture
async def process_node(tmp_path: Path) -> AsyncIterator[tuple[ProcessNode, Any]]:
    async with InProcessCluster() as cluster:
        cidr = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.0/24"
        node = ProcessNode(cluster.client, LocalNodeSettings(data_dir=tmp_path, name="proc", pod_cidr=cidr),
                           status_interval=0.3)
        stop = asyncio.Event()
        task = asyncio.create_task(node.run(stop=stop))
        try:
            yield node, cluster
        finally:
            if node.runtime is not None:
                for sandbox in await node.runtime.list_pod_sandboxes():
                    await node.runtime.remove_pod_sandbox(sandbox.id)
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)


async def test_the_node_says_it_is_not_isolated(process_node: tuple[ProcessNode, Any]) -> None:
    _, cluster = process_node
    nodes = cluster.resource("", "v1", "nodes")

    async def condition() -> JSON | None:
        try:
            found = await cluster.client.get(nodes, "", "proc")
        except Exception:
            return None
        return next((c for c in found["status"].get("conditions") or [] if c["type"] == ISOLATION_CONDITION), None)

    first = await eventually(condition, what="the Isolation condition")
    assert first["status"] == "False" and first["reason"] == "ProcessRuntime"
    found = await cluster.client.get(nodes, "", "proc")
    assert found["metadata"]["annotations"][RUNTIME_ANNOTATION] == "process"
    assert found["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("process://")
    ready = next(c for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"

    async def renewed() -> bool:
        again = await condition()
        return again is not None and again["lastHeartbeatTime"] != first["lastHeartbeatTime"]

    await eventually(renewed, timeout=5, what="the condition to be renewed")


async def test_a_bound_pod_runs_on_its_loopback_address(process_node: tuple[ProcessNode, Any]) -> None:
    node, cluster = process_node
    pods = cluster.resource("", "v1", "pods")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "proc", "terminationGracePeriodSeconds": 1, "containers": [
               {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo $POD_IP; exec sleep 60"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}]}}
    await cluster.client.create(pods, "default", pod)

    async def running() -> JSON | None:
        found = await cluster.client.get(pods, "default", "p")
        return found if found.get("status", {}).get("phase") == "Running" else None

    found = await eventually(running, what="the Pod to run")
    ip = found["status"]["podIP"]
    assert ip.startswith("127.") and ip.endswith(".2")
    assert found["status"]["containerStatuses"][0]["image"] == "docker.io/library/busybox:latest"
    assert node.runtime is not None
    (container,) = await node.runtime.list_containers()
    text = b"".join([c async for c in node.runtime.logs(container.id, LogOptions())])
    assert text == f"{ip}\n".encode()
