"""The node agent core driving the native runtime, as root: Pods from an in-process API server run as runc
containers, report Succeeded or restart with back-off, and leave nothing behind once deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubelet_helpers import ValidatingClient, eventually
from native_helpers import BUSYBOX, Native, busybox, force_clean, leftovers, make_native, require_native

from nanokube.api.errors import NotFound
from nanokube.client.interface import JSON
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.agent import AgentSettings, NodeAgent
from nanokube.kubelet.node import NodeConfig
from nanokube.kubelet.runtime.interface import LogOptions, PodSandboxConfig
from nanokube.kubelet.sync import PodSyncer, SyncSettings

pytestmark = pytest.mark.timeout(120)


class LocalLogSyncer(PodSyncer):
    """Pod logs under the test's directory instead of /var/log/pods."""

    logs = Path()

    def sandbox_config(self, pod: JSON, attempt: int) -> PodSandboxConfig:
        config = super().sandbox_config(pod, attempt)
        config.log_directory = str(self.logs / Path(config.log_directory).name)
        return config


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Native, Any, Any]]:
    require_native()
    native = make_native(tmp_path, busybox(tmp_path))
    left: dict[str, list[str]] = {}
    try:
        async with InProcessCluster() as cluster:
            client = ValidatingClient(cluster.client)
            agent = NodeAgent(client, AgentSettings(pod_field_selector="spec.nodeName=native", lease_interval=0.1,
                                                    status_interval=0.2))
            syncer = LocalLogSyncer(SyncSettings("native", ("192.0.2.9",), runtime_name="native",
                                                 backoff_initial=0.2, backoff_max=0.4), native.runtime, agent.status)
            syncer.logs = native.logs
            agent.add_node(NodeConfig("native", {"cpu": "2", "memory": "2Gi", "pods": "10"},
                                      addresses=[("InternalIP", "192.0.2.9")], pod_cidr="10.42.9.0/24"),
                           native.runtime, syncer)
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop=stop))
            try:
                yield native, client, cluster.resource("", "v1", "pods")
            finally:
                stop.set()
                await task
        for sandbox in await native.runtime.list_pod_sandboxes():
            await native.runtime.remove_pod_sandbox(sandbox.id)
        await native.runtime.close()
        left = {k: v for k, v in leftovers(native).items() if v}
    finally:
        await native.runtime.close()
        force_clean(native)
    assert not left, f"left on the host: {left}"


def pod(name: str, restart: str, command: list[str]) -> JSON:
    return {"metadata": {"name": name}, "spec": {"nodeName": "native", "restartPolicy": restart,
                                                 "terminationGracePeriodSeconds": 1,
                                                 "containers": [{"name": "c", "image": BUSYBOX, "command": command}]}}


async def test_pods_run_restart_and_go_away(node: tuple[Native, Any, Any]) -> None:
    native, client, pods = node
    await client.create(pods, "default", pod("once", "Never", ["sh", "-c", "echo hello from runc"]))
    await client.create(pods, "default", pod("crash", "Always", ["sh", "-c", "echo crashing; exit 3"]))

    async def phase(name: str, wanted: str) -> JSON | None:
        found = await client.get(pods, "default", name)
        return found if found.get("status", {}).get("phase") == wanted else None

    done = await eventually(lambda: phase("once", "Succeeded"), timeout=30, what="the pod Succeeded")
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert terminated["containerID"].startswith("native://")
    cid = terminated["containerID"].split("://")[1]
    assert b"".join([c async for c in native.runtime.logs(cid, LogOptions())]) == b"hello from runc\n"

    async def restarted() -> JSON | None:
        found = await client.get(pods, "default", "crash")
        statuses = found.get("status", {}).get("containerStatuses") or []
        return found if statuses and statuses[0].get("restartCount", 0) >= 2 else None

    crashing = (await eventually(restarted, timeout=30, what="two restarts"))["status"]["containerStatuses"][0]
    assert crashing["lastState"]["terminated"]["exitCode"] == 3

    for name in ("once", "crash"):
        await client.delete(pods, "default", name)

    async def gone() -> bool:
        for name in ("once", "crash"):
            try:
                await client.get(pods, "default", name)
                return False
            except NotFound:
                pass
        return not await native.runtime.list_pod_sandboxes()

    await eventually(gone, timeout=30, what="the pods deleted and their sandboxes removed")
    assert not any(leftovers(native, spare=False).values()), leftovers(native, spare=False)
