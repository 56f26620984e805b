"""The node agent's core, for one node or thousands: bound Pods in, one worker per Pod, batched statuses out.

``NodeAgent`` is what every node agent shares: one informer on bound Pods, one ``PodWorkers``, one
``StatusManager`` and one ``NodeHeartbeat``, in front of a table of ``AgentNode``s, each with its own runtime
and ``PodSyncer``. The real agent runs it with one node, its runtime and the field selector
``spec.nodeName=<node>``; the simulator runs it with thousands of nodes on fake runtimes and
``spec.nodeName!=``. Either way a Pod event costs a dict lookup and, if the node must act, a worker task that
lives only while the Pod has work; echoes of the agent's own status writes are recognised and dropped.

A stopped node (``stop_node``) is frozen as if its machine died: no Lease renewals, no status reports, no
syncs; its runtime keeps what it has. ``start_node`` brings it back: it reports at once and resyncs its Pods.
After a restart the runtimes' ``recover`` is the caller's job; once the Pods are listed the agent removes
sandboxes of Pods that were deleted meanwhile, and the Pods that remain are synced against what runs, so
nothing running is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .node import NodeConfig, NodeHeartbeat
from .podworker import PodWorkers
from .runtime.interface import ContainerEvent, EventType, Runtime
from .status import StatusManager
from .sync import PodSyncer

log = logging.getLogger(__name__)


@dataclass
class AgentSettings:
    pod_field_selector: str = "spec.nodeName!="  # the real agent: spec.nodeName=<its node>
    lease_interval: float = 10.0
    lease_duration: int = 40
    status_interval: float = 60.0
    status_concurrency: int = 64
    heartbeat_concurrency: int = 128


@dataclass
class AgentNode:
    config: NodeConfig
    runtime: Runtime
    syncer: PodSyncer
    pods: set[str] = field(default_factory=set)  # uids bound here
    stopped: bool = False

    @property
    def name(self) -> str:
        return self.config.name


class NodeAgent:
    def __init__(self, client: Client, settings: AgentSettings | None = None, *,
                 rng: random.Random | None = None) -> None:
        s = self.settings = settings or AgentSettings()
        pods = client.registry.get("", "v1", "pods")
        assert pods is not None
        self.client = client
        self.pods = Informer(client, pods, field_selector=s.pod_field_selector)
        self.status = StatusManager(client, concurrency=s.status_concurrency, lookup=self._lookup)
        self.workers = PodWorkers(self._sync)
        self.heartbeat = NodeHeartbeat(client, lease_interval=s.lease_interval, lease_duration=s.lease_duration,
                                       status_interval=s.status_interval, concurrency=s.heartbeat_concurrency,
                                       on_gone=self._forget_node, rng=rng)
        self.nodes: dict[str, AgentNode] = {}
        self._where: dict[str, tuple[str, str]] = {}  # pod uid -> (node name, informer key)
        # Set while every node added so far is registered.
        self.ready = self.heartbeat.all_registered
        self.pods.add_handler(self._on_pod)

    # -- nodes --------------------------------------------------------------------------------------------
    def add_node(self, config: NodeConfig, runtime: Runtime, syncer: PodSyncer) -> AgentNode:
        """Take on a node: register it (from the run loop), keep it alive, run the Pods bound to it.
        ``syncer`` must write through this agent's ``status`` manager."""
        node = self.nodes[config.name] = AgentNode(config, runtime, syncer)
        runtime.subscribe(self._on_container_event)
        self.heartbeat.add(config)
        for pod in self.pods.items():  # bound before the node was known
            if pod["spec"].get("nodeName") == config.name:
                self._on_pod("ADDED", pod, None)
        return node

    def remove_node(self, name: str) -> None:
        """Stop looking after ``name``; its Node, Lease and Pods stay as they are."""
        self.heartbeat.remove(name)
        self._forget_node(name)

    def _forget_node(self, name: str) -> None:
        node = self.nodes.pop(name, None)
        if node is None:
            return
        for uid in node.pods:
            self.workers.forget(uid)
            self._where.pop(uid, None)
            self.status.forget(uid)

    def stop_node(self, name: str) -> None:
        node = self.nodes[name]
        if node.stopped:
            return
        node.stopped = True
        self.heartbeat.pause(name)
        self.status.drop_pending(node.pods)
        log.info("node %s stopped", name)

    def start_node(self, name: str) -> None:
        node = self.nodes[name]
        if not node.stopped:
            return
        node.stopped = False
        self.heartbeat.resume(name)
        for uid in node.pods:
            self.workers.update(uid)
        log.info("node %s started", name)

    # -- pods ---------------------------------------------------------------------------------------------
    def _lookup(self, namespace: str, name: str) -> JSON | None:
        return self.pods.get(f"{namespace}/{name}" if namespace else name)

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        node = self.nodes.get(pod["spec"].get("nodeName", ""))
        if node is None:
            return
        if kind == "DELETED":
            self.workers.update(uid)
            return
        self._where[uid] = (node.name, f"{meta['namespace']}/{meta['name']}")
        node.pods.add(uid)
        self.status.observe(pod)
        if old is None or needs_sync(pod, old):
            self.workers.update(uid)

    def _on_container_event(self, event: ContainerEvent) -> None:
        if event.type is EventType.STOPPED and event.pod_uid:
            self.workers.update(event.pod_uid)

    async def _sync(self, uid: str) -> float | None:
        where = self._where.get(uid)
        if where is None:
            return None
        node = self.nodes.get(where[0])
        if node is None:
            self._where.pop(uid, None)
            return None
        if node.stopped:
            return None  # start_node resyncs
        pod = self.pods.get(where[1])
        if pod is None or pod["metadata"]["uid"] != uid:
            await node.syncer.cleanup(uid)
            node.pods.discard(uid)
            self._where.pop(uid, None)
            self.workers.forget(uid)
            return None
        return await node.syncer.sync(pod)

    # -- running ------------------------------------------------------------------------------------------
    async def run(self, *, stop: asyncio.Event,
                  also: tuple[Callable[[asyncio.Event], Awaitable[None]], ...] = ()) -> None:
        """Run until ``stop``; ``also`` are more loops (``loop(stop)``) to run alongside, e.g. informers."""
        loops: list[Awaitable[None]] = [self.pods.run(stop=stop), self.heartbeat.run(stop=stop),
                                        self.status.run(stop=stop), self._remove_orphans(),
                                        *(extra(stop) for extra in also)]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        try:
            await stop.wait()
        finally:
            await self.workers.shutdown()
            for node in list(self.nodes.values()):
                with contextlib.suppress(Exception):
                    await node.syncer.close()  # its queued Events are written before the agent goes
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


    async def _remove_orphans(self) -> None:
        """Once the Pods are listed: remove what the runtimes still hold for Pods that no longer exist (deleted
        while the agent was down; the kubelet's HandlePodCleanups)."""
        await self.pods.synced.wait()
        for node in list(self.nodes.values()):
            known = {uid for uid, (name, _) in self._where.items() if name == node.name}
            try:
                sandboxes = await node.runtime.list_pod_sandboxes()
            except Exception:
                log.exception("node %s: cannot list sandboxes to clean up", node.name)
                continue
            for uid in {s.metadata.uid for s in sandboxes} - known:
                log.info("node %s: removing what is left of deleted pod %s", node.name, uid)
                await node.syncer.cleanup(uid)


def needs_sync(pod: JSON, old: JSON) -> bool:
    """A change the node must act on (not the echo of its own status write)."""
    meta, before = pod["metadata"], old["metadata"]
    for key in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if meta.get(key) != before.get(key):
            return True
    if meta.get("annotations") != before.get("annotations") or meta.get("labels") != before.get("labels"):
        return True  # downwardAPI volumes show both
    if pod["spec"].get("readinessGates"):
        return (pod.get("status") or {}).get("conditions") != (old.get("status") or {}).get("conditions")
    return False
