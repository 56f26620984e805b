"""Shared by the probe and hook tests: a fake runtime whose exec answers are scripted and whose calls are logged,
and a one-node agent on an in-process cluster that runs Pods with probes and hooks on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kubelet_helpers import ValidatingClient, eventually

from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.interface import JSON
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.agent import AgentSettings, NodeAgent
from nanokube.kubelet.hooks import HookRunner
from nanokube.kubelet.node import NodeConfig
from nanokube.kubelet.probes import ProbeManager
from nanokube.kubelet.runtime.fake import FakeRuntime
from nanokube.kubelet.runtime.interface import ExecResult
from nanokube.kubelet.sync import PodSyncer, SyncSettings

NODE = "probed"


class ScriptedRuntime(FakeRuntime):
    """``exec_sync`` answers ``answers[" ".join(cmd)]`` (exit code, output; default success), or never for a
    command in ``hang``, and logs ``("exec <cmd>", container name or id)``; ``stop_container`` logs
    ``("stop", container name)``."""

    def __init__(self, pod_cidr: str = "10.42.9.0/24") -> None:
        super().__init__(pod_cidr=pod_cidr)
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.hang: set[str] = set()  # commands that never return
        self.calls: list[tuple[str, str]] = []

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult:
        known = container_id in {c.id for c in await self.list_containers()}
        name = (await self.container_status(container_id)).metadata.name if known else container_id
        key = " ".join(cmd)
        self.calls.append((f"exec {key}", name))
        if key in self.hang:
            await asyncio.Event().wait()
        code, output = self.answers.get(key, (0, b""))
        return ExecResult(code, output)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        status = await self.container_status(container_id)
        self.calls.append(("stop", status.metadata.name))
        await super().stop_container(container_id, timeout)

    def execs(self, cmd: str) -> int:
        return sum(1 for what, _ in self.calls if what == f"exec {cmd}")


def node_config() -> NodeConfig:
    info = {"architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "fake://0.1.0",
            "kernelVersion": "6.1", "kubeProxyVersion": "", "kubeletVersion": "v1.37.0", "machineID": "m",
            "operatingSystem": "linux", "osImage": "x", "systemUUID": "u"}
    return NodeConfig(NODE, {"cpu": "2", "memory": "2Gi", "pods": "10"}, addresses=[("InternalIP", "192.0.2.9")],
                      pod_cidr="10.42.9.0/24", node_info=info)


@dataclass
class ProbedNode:
    client: ValidatingClient
    runtime: ScriptedRuntime
    probes: ProbeManager
    pods: Resource
    events: Resource
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def pod(self, name: str) -> JSON:
        return await self.client.get(self.pods, "default", name)

    async def pod_when(self, name: str, test: object, what: str, timeout: float = 10.0) -> JSON:
        async def check() -> JSON | None:
            found = await self.pod(name)
            return found if test(found) else None  # type: ignore[operator]

        return await eventually(check, timeout=timeout, what=what)

    async def event_messages(self, reason: str) -> list[str]:
        listed = await self.client.list(self.events, "default")
        return [e["message"] for e in listed.items if e.get("reason") == reason]


@contextlib.asynccontextmanager
async def probed_node() -> AsyncIterator[ProbedNode]:
    """An in-process cluster with one agent node on a ScriptedRuntime, with probes and hooks enabled."""
    async with InProcessCluster() as cluster:
        client = ValidatingClient(cluster.client)
        agent = NodeAgent(client, AgentSettings(pod_field_selector=f"spec.nodeName={NODE}", lease_interval=0.1,
                                                status_interval=0.2))
        runtime = ScriptedRuntime()
        recorder = EventRecorder(client, "kubelet", host=NODE)
        probes = ProbeManager(runtime, wake=agent.workers.update, recorder=recorder)
        syncer = PodSyncer(SyncSettings(NODE, ("192.0.2.9",), backoff_initial=0.2, backoff_max=0.4), runtime,
                           agent.status, recorder=recorder, probes=probes, hooks=HookRunner(runtime))
        agent.add_node(node_config(), runtime, syncer)
        node = ProbedNode(client, runtime, probes, cluster.resource("", "v1", "pods"),
                          cluster.resource("", "v1", "events"))
        task = asyncio.create_task(agent.run(stop=node.stop))
        try:
            yield node
        finally:
            node.stop.set()
            await task
            await probes.close()


def probed_pod(name: str, container: JSON, *, restart_policy: str = "Always", grace: int = 1) -> JSON:
    base: JSON = {"name": "web", "image": "nginx:1.27"}
    return {"metadata": {"name": name},
            "spec": {"nodeName": NODE, "restartPolicy": restart_policy, "terminationGracePeriodSeconds": grace,
                     "containers": [{**base, **container}]}}


def exec_probe(cmd: str, **settings: object) -> JSON:
    return {"exec": {"command": cmd.split()}, "periodSeconds": 1, **settings}
