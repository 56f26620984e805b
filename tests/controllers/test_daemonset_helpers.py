"""Helpers for the DaemonSet controller tests: Node objects, DaemonSet manifests, and a hand-played scheduler
and kubelet that bind pods to the node they are pinned to, mark them Running and Ready, and finish graceful
deletions. (Named ``test_*`` to sit with the tests it serves; it holds no tests.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from harness import eventually as eventually  # re-exported for the tests
from harness import running as running

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.daemonset import target_node
from nanokube.util.timeutil import rfc3339

T = TypeVar("T")
JSON = dict[str, Any]
NS = "default"


def node_manifest(name: str, labels: dict[str, str] | None = None, taints: list[JSON] | None = None) -> JSON:
    node: JSON = {"apiVersion": "v1", "kind": "Node",
                  "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                  "spec": {}, "status": {"conditions": [
                      {"type": "Ready", "status": "True", "reason": "KubeletReady",
                       "lastHeartbeatTime": rfc3339(), "lastTransitionTime": rfc3339()}]}}
    if taints:
        node["spec"]["taints"] = taints
    return node


def daemonset_manifest(name: str, app: str = "agent", image: str = "agent:1", **spec: Any) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "agent", "image": image}]}},
                     **spec}}


class Kube:
    """An in-process cluster with the resources these tests use, a scheduler and a kubelet played by hand."""

    def __init__(self, cluster: InProcessCluster) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.pods = cluster.resource("", "v1", "pods")
        self.nodes = cluster.resource("", "v1", "nodes")
        self.daemonsets = cluster.resource("apps", "v1", "daemonsets")
        self.revisions = cluster.resource("apps", "v1", "controllerrevisions")
        self.events = cluster.resource("", "v1", "events")

    async def add_node(self, name: str, labels: dict[str, str] | None = None,
                       taints: list[JSON] | None = None) -> JSON:
        return await self.client.create(self.nodes, "", node_manifest(name, labels, taints))

    async def create_ds(self, name: str, **kwargs: Any) -> JSON:
        return await self.client.create(self.daemonsets, NS, daemonset_manifest(name, **kwargs))

    async def ds(self, name: str) -> JSON:
        return await self.client.get(self.daemonsets, NS, name)

    async def list_pods(self, selector: str = "", *, live: bool = True) -> list[JSON]:
        items = (await self.client.list(self.pods, NS, label_selector=selector)).items
        if live:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")
                     and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return items

    async def pods_by_node(self, selector: str = "app=agent") -> dict[str, list[JSON]]:
        out: dict[str, list[JSON]] = {}
        for pod in await self.list_pods(selector):
            out.setdefault(target_node(pod) or "", []).append(pod)
        return out

    async def revisions_of(self, selector: str = "app=agent") -> list[JSON]:
        items = (await self.client.list(self.revisions, NS, label_selector=selector)).items
        return sorted(items, key=lambda r: r.get("revision", 0))

    async def events_for(self, name: str) -> list[tuple[str, str]]:
        items = (await self.client.list(self.events, NS)).items
        return [(e["reason"], e["message"]) for e in items if e["involvedObject"].get("name") == name]

    # -- the scheduler and kubelet, by hand --------------------------------------------------------------
    async def bind_all(self) -> int:
        """Bind every unbound pod to the node its affinity pins it to; return how many."""
        bound = 0
        for pod in await self.list_pods():
            node = target_node(pod)
            if not pod["spec"].get("nodeName") and node:
                with contextlib.suppress(Conflict, NotFound):
                    await self.client.bind(NS, pod["metadata"]["name"], node)
                    bound += 1
        return bound

    async def set_status(self, pod: JSON, *, ready: bool = True, phase: str = "Running") -> None:
        """What a kubelet writes once the pod's containers run (and pass, or fail, readiness)."""
        status = {"phase": phase, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339()}]}
        await self.client.patch(self.pods, NS, pod["metadata"]["name"], {"status": status}, subresource="status")

    async def run_all(self, selector: str = "", *, skip: Callable[[JSON], bool] | None = None) -> int:
        """Mark every bound, not yet ready pod Running and Ready (unless ``skip`` says not); return how many."""
        count = 0
        for pod in await self.list_pods(selector):
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not pod["spec"].get("nodeName") or (skip is not None and skip(pod)):
                continue
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                await self.set_status(pod)
                count += 1
        return count

    async def finish_deletions(self) -> int:
        """Confirm graceful deletions, as a kubelet does once the containers are gone."""
        count = 0
        for pod in await self.list_pods(live=False):
            if pod["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(NotFound):
                    await self.client.delete(self.pods, NS, pod["metadata"]["name"], grace_period_seconds=0)
                    count += 1
        return count

    async def step(self, *, skip: Callable[[JSON], bool] | None = None) -> int:
        return await self.bind_all() + await self.run_all(skip=skip) + await self.finish_deletions()

    @contextlib.asynccontextmanager
    async def kubelet(self, *, skip: Callable[[JSON], bool] | None = None) -> AsyncIterator[None]:
        """Keep stepping in the background (bind, run, finish deletions) until the block ends."""
        async def loop() -> None:
            while True:
                with contextlib.suppress(ApiError):
                    await self.step(skip=skip)
                await asyncio.sleep(0.02)
        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def is_ready(pod: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])
