"""Helpers for node-agent tests: polling with a deadline, a client that checks every object it is handed back
against the official Python client's models, Pod manifests, and a simulator running on an in-process cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes import client as k8s

from nanokube.api.registry import Resource
from nanokube.client.interface import JSON, Client
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.sim import SimSettings, Simulator

T = TypeVar("T")
MODELS: dict[str, Any] = {"Pod": k8s.V1Pod, "Node": k8s.V1Node, "Lease": k8s.V1Lease, "Event": k8s.CoreV1Event}


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0,
                     what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def validate(obj: JSON) -> None:
    """Raise if the official Python client would reject ``obj``."""
    model = MODELS.get(obj.get("kind", ""))
    if model is not None:
        model.model_validate(obj)


class ValidatingClient:
    """A Client that validates every object a write returns (what the agent wrote, as the API stored it)."""

    def __init__(self, inner: Client) -> None:
        self.inner = inner
        self.registry = inner.registry
        self.checked = 0

    def _check(self, obj: JSON) -> JSON:
        validate(obj)
        self.checked += 1
        return obj

    async def get(self, resource: Resource, namespace: str, name: str) -> JSON:
        return await self.inner.get(resource, namespace, name)

    async def list(self, resource: Resource, namespace: str = "", **kw: Any) -> Any:
        return await self.inner.list(resource, namespace, **kw)

    def watch(self, resource: Resource, namespace: str = "", **kw: Any) -> Any:
        return self.inner.watch(resource, namespace, **kw)

    async def create(self, resource: Resource, namespace: str, obj: JSON) -> JSON:
        return self._check(await self.inner.create(resource, namespace, obj))

    async def update(self, resource: Resource, namespace: str, obj: JSON, *, subresource: str = "") -> JSON:
        return self._check(await self.inner.update(resource, namespace, obj, subresource=subresource))

    async def patch(self, resource: Resource, namespace: str, name: str, patch: Any, **kw: Any) -> JSON:
        return self._check(await self.inner.patch(resource, namespace, name, patch, **kw))

    async def delete(self, resource: Resource, namespace: str, name: str, **kw: Any) -> JSON:
        return await self.inner.delete(resource, namespace, name, **kw)

    async def bind(self, namespace: str, name: str, node: str) -> None:
        await self.inner.bind(namespace, name, node)

    async def evict(self, namespace: str, name: str, **kw: Any) -> None:
        await self.inner.evict(namespace, name, **kw)

    async def request_token(self, namespace: str, account: str, request: JSON) -> JSON:
        return await self.inner.request_token(namespace, account, request)


def pod(name: str, node: str | None = None, *, annotations: dict[str, str] | None = None,
        restart_policy: str = "Always", containers: int = 1, init: list[str] | None = None,
        **spec: Any) -> JSON:
    body: JSON = {"metadata": {"name": name, "annotations": dict(annotations or {})},
                  "spec": {"restartPolicy": restart_policy,
                           "containers": [{"name": f"c{i}" if containers > 1 else "web", "image": "nginx:1.27"}
                                          for i in range(containers)], **spec}}
    if node:
        body["spec"]["nodeName"] = node
    if init:
        body["spec"]["initContainers"] = [{"name": n, "image": "busybox:1.36"} for n in init]
    return body


def condition(obj: JSON, type_: str) -> JSON | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


@dataclass
class SimCluster:
    cluster: InProcessCluster
    client: ValidatingClient
    sim: Simulator
    pods: Resource
    nodes: Resource
    leases: Resource
    events: Resource
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def get_pod(self, name: str, namespace: str = "default") -> JSON | None:
        from nanokube.api.errors import NotFound

        try:
            return await self.client.get(self.pods, namespace, name)
        except NotFound:
            return None

    async def pod_when(self, name: str, test: Callable[[JSON], bool], *, timeout: float = 10.0,
                       what: str = "") -> JSON:
        async def check() -> JSON | None:
            found = await self.get_pod(name)
            return found if found is not None and test(found) else None

        return await eventually(check, timeout=timeout, what=what or f"pod {name}")

    async def lease(self, node: str) -> JSON:
        return await self.client.get(self.leases, "kube-node-lease", node)


FAST = {"pod_start_delay": (0.0, 0.0), "lease_interval": 0.1, "status_interval": 0.2, "backoff_initial": 0.2,
        "backoff_max": 0.4}


@contextlib.asynccontextmanager
async def sim_cluster(**settings: Any) -> AsyncIterator[SimCluster]:
    """An in-process cluster with a running Simulator (fast intervals unless overridden)."""
    async with InProcessCluster() as cluster:
        client = ValidatingClient(cluster.client)
        sim = Simulator(client, SimSettings(**{"nodes": 2, "seed": 7, **FAST, **settings}))
        sc = SimCluster(cluster, client, sim, cluster.resource("", "v1", "pods"), cluster.resource("", "v1", "nodes"),
                        cluster.resource("coordination.k8s.io", "v1", "leases"), cluster.resource("", "v1", "events"))
        task = asyncio.create_task(sim.run(stop=sc.stop))
        try:
            await asyncio.wait_for(sim.ready.wait(), 10)
            yield sc
        finally:
            sc.stop.set()
            await task
