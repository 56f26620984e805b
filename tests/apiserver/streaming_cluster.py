"""A served in-process control plane with simulated nodes, their shared kubelet server and the streaming proxy
wired as ``nanokube up --sim-nodes N`` will wire them; for the streaming tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from nanokube.api.errors import NotFound
from nanokube.api.registry import Resource
from nanokube.apiserver.streaming import StreamingProxy, StreamingSettings
from nanokube.client.interface import JSON
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.server import KubeletServer, KubeletServerSettings
from nanokube.kubelet.sim import SimSettings, Simulator

TOKEN = "kubelet-secret"


@dataclass
class StreamingCluster:
    cluster: InProcessCluster
    sim: Simulator
    kubelet: KubeletServer
    pods: Resource
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def kubelet_url(self) -> str:
        return f"http://127.0.0.1:{self.kubelet.bound_port}"

    async def create_pod(self, name: str, *, node: str = "sim-node-0", containers: tuple[str, ...] = ("app",),
                         annotations: dict[str, str] | None = None, namespace: str = "default",
                         restart_policy: str = "Always") -> JSON:
        body = {"metadata": {"name": name, "annotations": dict(annotations or {})},
                "spec": {"nodeName": node, "restartPolicy": restart_policy,
                         "containers": [{"name": c, "image": "busybox:1.36"} for c in containers]}}
        return await self.cluster.client.create(self.pods, namespace, body)

    async def pod_when(self, name: str, test: Callable[[JSON], bool], *, namespace: str = "default",
                       timeout: float = 10.0) -> JSON:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with contextlib.suppress(NotFound):
                found = await self.cluster.client.get(self.pods, namespace, name)
                if test(found):
                    return found
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for pod {name}")
            await asyncio.sleep(0.02)

    async def running(self, name: str, **kw: Any) -> JSON:
        return await self.pod_when(name, lambda p: (p.get("status") or {}).get("phase") == "Running", **kw)


@contextlib.asynccontextmanager
async def streaming_cluster(nodes: int = 3, token: str = TOKEN) -> AsyncIterator[StreamingCluster]:
    async with InProcessCluster(serve=True) as cluster:
        sim = Simulator(cluster.client, SimSettings(nodes=nodes, seed=3, pod_start_delay=(0.0, 0.0),
                                                    lease_interval=0.2, status_interval=0.5))
        kubelet = KubeletServer(sim.agent, KubeletServerSettings(port=0, token=token))
        cluster.server.rest.sub.streaming = StreamingProxy(cluster.storage, cluster.storage.registry,
                                                           StreamingSettings(kubelet_token=token))
        sc = StreamingCluster(cluster, sim, kubelet, cluster.resource("", "v1", "pods"))
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(kubelet.run(stop=sc.stop, started=bound.set_result))
        sim.serve_kubelet("127.0.0.1", await bound)
        simulating = asyncio.create_task(sim.run(stop=sc.stop))
        try:
            await asyncio.wait_for(sim.ready.wait(), 10)
            yield sc
        finally:
            sc.stop.set()
            await asyncio.gather(serving, simulating, return_exceptions=True)
