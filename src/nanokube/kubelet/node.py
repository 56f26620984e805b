"""Node registration and heartbeats, for one node (the agent) or thousands (the simulator) from one task.

A node agent registers its Node (capacity, allocatable, addresses, nodeInfo, conditions), then proves it is
alive two ways, as the kubelet does: it renews its Lease ``kube-node-lease/<node>`` every ``lease_interval``
(10 s) and reports its Node status, whose conditions carry ``lastHeartbeatTime``, every ``status_interval``
(1 min). The node lifecycle controller reads both.

``NodeHeartbeat`` does all of that for any number of nodes with one task: due renewals sit in a heap, are
sent ``concurrency`` at a time and rescheduled, and first renewals are spread over one interval so 5,000
nodes renew evenly (500 Lease writes a second) instead of in bursts. ``pause(name)`` silences one node (it
stops renewing and reporting, as if the machine died) and ``resume(name)`` brings it back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nanokube.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import rfc3339, rfc3339_micro

from .runtime.interface import Image

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"
MAX_IMAGES = 50  # the kubelet's nodeStatusMaxImages

# type, healthy status, reason, message: what a healthy kubelet reports (NetworkUnavailable: the route
# controller's words).
HEALTHY_CONDITIONS = (
    ("NetworkUnavailable", "False", "RouteCreated", "RouteController created a route"),
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


@dataclass
class NodeConfig:
    """Everything a Node is registered with."""

    name: str
    capacity: dict[str, str]
    allocatable: dict[str, str] = field(default_factory=dict)  # default: capacity
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    taints: list[JSON] = field(default_factory=list)
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (type, address): InternalIP, Hostname
    pod_cidr: str = ""
    node_info: dict[str, str] = field(default_factory=dict)
    provider_id: str = ""
    kubelet_port: int = 10250
    # The images on the node for status.images (the runtime's list), or None for a node that reports none.
    images: Callable[[], Awaitable[list[Image]]] | None = None

    @property
    def internal_ips(self) -> tuple[str, ...]:
        return tuple(a for t, a in self.addresses if t == "InternalIP")


def healthy_conditions(now: str, previous: list[JSON] | None = None) -> list[JSON]:
    """The node conditions of a healthy agent; ``lastTransitionTime`` is kept where the status is unchanged."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for type_, status, reason, message in HEALTHY_CONDITIONS:
        prior = before.get(type_)
        since = prior["lastTransitionTime"] if prior is not None and prior.get("status") == status \
            and prior.get("lastTransitionTime") else now
        out.append({"type": type_, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": since})
    return out


def node_object(config: NodeConfig) -> JSON:
    """The Node as the agent creates it (status is posted separately, through ``nodes/status``)."""
    annotations = {"node.alpha.kubernetes.io/ttl": "0",
                   "volumes.kubernetes.io/controller-managed-attach-detach": "true", **config.annotations}
    spec: JSON = {}
    if config.pod_cidr:
        spec["podCIDR"] = config.pod_cidr
        spec["podCIDRs"] = [config.pod_cidr]
    if config.taints:
        spec["taints"] = [dict(t) for t in config.taints]
    if config.provider_id:
        spec["providerID"] = config.provider_id
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": config.name, "labels": dict(config.labels), "annotations": annotations},
            "spec": spec}


def node_status(config: NodeConfig, conditions: list[JSON]) -> JSON:
    return {
        "capacity": dict(config.capacity),
        "allocatable": dict(config.allocatable or config.capacity),
        "conditions": conditions,
        "addresses": [{"type": t, "address": a} for t, a in config.addresses],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": dict(config.node_info),
    }


def images_status(images: list[Image], limit: int = MAX_IMAGES) -> list[JSON]:
    """``status.images`` as the kubelet reports it: the largest ``limit`` images, each by its digests and tags."""
    largest = sorted(images, key=lambda i: i.size, reverse=True)[:limit]
    return [{"names": [*i.repo_digests, *i.repo_tags] or [i.id], "sizeBytes": i.size} for i in largest]


def lease_object(name: str, node_uid: str, duration: int, renew: str) -> JSON:
    lease: JSON = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                   "spec": {"holderIdentity": name, "leaseDurationSeconds": duration, "renewTime": renew}}
    if node_uid:
        lease["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                 "uid": node_uid}]
    return lease


@dataclass
class _Node:
    config: NodeConfig
    uid: str = ""
    lease: JSON | None = None
    paused: bool = False
    registered: bool = False
    generation: int = 0  # heap entries of older generations are stale


class NodeHeartbeat:
    def __init__(self, client: Client, *, lease_interval: float = 10.0, lease_duration: int = 40,
                 status_interval: float = 60.0, concurrency: int = 128,
                 on_gone: Callable[[str], None] | None = None, rng: random.Random | None = None) -> None:
        """``on_gone(name)`` is called when a registered Node has been deleted by someone else."""
        reg = client.registry
        nodes, leases = reg.get("", "v1", "nodes"), reg.get("coordination.k8s.io", "v1", "leases")
        assert nodes is not None and leases is not None
        self.client = client
        self.nodes_res, self.leases_res = nodes, leases
        self.lease_interval = lease_interval
        self.lease_duration = lease_duration
        self.status_interval = status_interval
        self.concurrency = concurrency
        self.on_gone = on_gone
        self._rng = rng or random.Random()
        self._nodes: dict[str, _Node] = {}
        self._pending: deque[str] = deque()
        self._heap: list[tuple[float, int, str, str, int]] = []  # (due, seq, kind, name, generation)
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self.all_registered = asyncio.Event()
        self.all_registered.set()
        self.renewals = 0  # Lease writes (for benchmarks and tests)

    # -- membership ---------------------------------------------------------------------------------------
    def add(self, config: NodeConfig) -> None:
        """Register ``config`` (soon, from the run loop) and keep it alive from then on."""
        if config.name in self._nodes:
            return
        self._nodes[config.name] = _Node(config)
        self._pending.append(config.name)
        self.all_registered.clear()
        self._wake.set()

    def remove(self, name: str) -> None:
        """Stop looking after ``name`` (its Node and Lease stay as they are)."""
        self._nodes.pop(name, None)

    def pause(self, name: str) -> None:
        node = self._nodes.get(name)
        if node is not None:
            node.paused = True

    def resume(self, name: str) -> None:
        """Renew and report at once, then on the usual schedule."""
        node = self._nodes.get(name)
        if node is None or not node.paused:
            return
        node.paused = False
        if node.registered:
            node.generation += 1
            self._schedule(node, 0.0, 0.0)

    def registered(self, name: str) -> bool:
        node = self._nodes.get(name)
        return node is not None and node.registered

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def _schedule(self, node: _Node, lease_in: float, status_in: float) -> None:
        now = time.monotonic()
        name, gen = node.config.name, node.generation
        heapq.heappush(self._heap, (now + lease_in, next(self._seq), "lease", name, gen))
        heapq.heappush(self._heap, (now + status_in, next(self._seq), "status", name, gen))
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------------------------
    async def run(self, *, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if self._pending:
                    await self._register_some()
                    continue
                due = self._take_due()
                if due:
                    await self._beat_all(due)
                    continue
                self._wake.clear()
                timeout = max(self._heap[0][0] - time.monotonic(), 0.0) if self._heap else None
                waking = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({waking, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                waking.cancel()
        finally:
            stopping.cancel()

    def _take_due(self) -> list[tuple[float, str, _Node]]:
        now = time.monotonic()
        due: list[tuple[float, str, _Node]] = []
        while self._heap and self._heap[0][0] <= now and len(due) < self.concurrency:
            when, _, kind, name, gen = heapq.heappop(self._heap)
            node = self._nodes.get(name)
            if node is None or gen != node.generation:
                continue
            due.append((when, kind, node))
        return due

    async def _beat_all(self, due: list[tuple[float, str, _Node]]) -> None:
        await asyncio.gather(*(self._beat(kind, node) for _, kind, node in due))
        now = time.monotonic()
        for when, kind, node in due:
            if self._nodes.get(node.config.name) is not node:
                continue
            interval = self.lease_interval if kind == "lease" else self.status_interval
            heapq.heappush(self._heap, (max(when + interval, now), next(self._seq), kind, node.config.name,
                                        node.generation))

    async def _beat(self, kind: str, node: _Node) -> None:
        if node.paused:
            return
        try:
            if kind == "lease":
                await self.renew_lease(node)
            else:
                await self.post_status(node)
        except NotFound:
            self._gone(node)
        except ApiError as err:
            log.warning("node %s: %s heartbeat failed: %s", node.config.name, kind, err)

    def _gone(self, node: _Node) -> None:
        if self._nodes.get(node.config.name) is node:
            log.info("node %s was deleted; no longer keeping it alive", node.config.name)
            self.remove(node.config.name)
            if self.on_gone is not None:
                self.on_gone(node.config.name)

    async def _register_some(self) -> None:
        batch: list[_Node] = []
        while self._pending and len(batch) < self.concurrency:
            node = self._nodes.get(self._pending.popleft())
            if node is not None and not node.registered:
                batch.append(node)
        results = await asyncio.gather(*(self._register(node) for node in batch), return_exceptions=True)
        for node, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("node %s: registration failed (%s); retrying", node.config.name, result)
                asyncio.get_running_loop().call_later(1.0, self._retry_registration, node.config.name)
        if not self._pending and all(n.registered for n in self._nodes.values()):
            self.all_registered.set()

    def _retry_registration(self, name: str) -> None:
        if name in self._nodes:
            self._pending.append(name)
            self._wake.set()

    async def _register(self, node: _Node) -> None:
        config = node.config
        try:
            created = await self.client.create(self.nodes_res, "", node_object(config))
        except AlreadyExists:
            created = await self.client.get(self.nodes_res, "", config.name)
        node.uid = created["metadata"].get("uid", "")
        await self.post_status(node, full=True, current=created)
        await self.renew_lease(node)
        node.registered = True
        # Spread the first renewals over one interval; later ones keep that phase.
        self._schedule(node, self.lease_interval * self._rng.random(), self.status_interval * self._rng.random())

    # -- the two heartbeats -------------------------------------------------------------------------------
    async def post_status(self, node: _Node, *, full: bool = False, current: JSON | None = None) -> None:
        """Report the Node's status: everything on registration, the conditions' heartbeat afterwards."""
        if current is None:
            current = await self.client.get(self.nodes_res, "", node.config.name)
        previous = (current.get("status") or {}).get("conditions")
        conditions = healthy_conditions(rfc3339(), previous)
        status = node_status(node.config, conditions) if full else {"conditions": conditions}
        if node.config.images is not None:
            try:
                images = images_status(await node.config.images())
            except Exception as err:  # the heartbeat must go on without them
                log.warning("node %s: cannot list images: %s", node.config.name, err)
            else:
                if full or images != (current.get("status") or {}).get("images"):
                    status["images"] = images
        await self.client.patch(self.nodes_res, "", node.config.name, {"status": status},
                                patch_type="strategic", subresource="status")

    async def renew_lease(self, node: _Node) -> None:
        name = node.config.name
        renew = rfc3339_micro()
        if node.lease is None:
            body = lease_object(name, node.uid, self.lease_duration, renew)
            try:
                node.lease = await self.client.create(self.leases_res, LEASE_NAMESPACE, body)
                self.renewals += 1
                return
            except AlreadyExists:
                node.lease = await self.client.get(self.leases_res, LEASE_NAMESPACE, name)
        for _ in range(2):
            lease = node.lease
            assert lease is not None
            spec: dict[str, Any] = {**(lease.get("spec") or {}), "holderIdentity": name,
                                    "leaseDurationSeconds": self.lease_duration, "renewTime": renew}
            try:
                node.lease = await self.client.update(self.leases_res, LEASE_NAMESPACE, {**lease, "spec": spec})
                self.renewals += 1
                return
            except Conflict:
                node.lease = await self.client.get(self.leases_res, LEASE_NAMESPACE, name)
            except NotFound:
                node.lease = None
                with contextlib.suppress(AlreadyExists):
                    node.lease = await self.client.create(self.leases_res, LEASE_NAMESPACE,
                                                          lease_object(name, node.uid, self.lease_duration, renew))
                    self.renewals += 1
                return
