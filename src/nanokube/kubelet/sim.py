"""Simulated nodes: N Nodes that register, heartbeat and run their Pods on the fake runtime, from one process.

``Simulator(client, SimSettings(nodes=5000)).run(stop=stop)`` is ``nanokube sim --nodes N``. It is the node
agent's own machinery with many nodes behind it instead of one, shaped to scale: one ``NodeHeartbeat`` task
renews every Lease and reports every Node status; one Pod informer (``spec.nodeName!=``) dispatches each bound
Pod to its node's ``PodSyncer`` through shared ``PodWorkers`` (a task per Pod only while it has work); one
``StatusManager`` batches every status write; container exits are timers in each node's ``FakeRuntime``.

Nodes are ``sim-node-<i>`` with the labels ``kubernetes.io/hostname``, ``kubernetes.io/os=linux``,
``kubernetes.io/arch=amd64`` and ``type=sim``, the annotation ``sim.nanokube.io/node: "true"``, pod CIDR
``10.42.<i>.0/24`` (continuing past 10.42.255.0 into 10.44.0.0, skipping the service range 10.43.0.0/16) and a
made-up InternalIP ``172.30.x.y`` that nothing ever contacts.

Driving it through the API (what ``nanokube sim node stop|start NAME`` does):

* ``sim.nanokube.io/stopped: "true"`` on a simulated Node stops it as if the machine died: no Lease renewals,
  no status reports, its Pods are neither started nor stopped nor reported. Removing the annotation (or
  setting it to anything else) starts it again: it reports at once and resyncs its Pods, whose containers
  kept the state the runtime gave them. ``set_node_stopped(client, name, stopped)`` writes it.
* A Node created with ``sim.nanokube.io/node: "true"`` is adopted: it gets a pod CIDR if it has none, and is
  kept alive and runs Pods like the others (how a test adds a node later).

Pod annotations the fake runtime reads are documented in ``runtime.fake``; readiness is immediate after a
container starts unless ``sim.nanokube.io/ready-after-seconds: "N"`` (or ``...ready-after-seconds.<name>``
for one container) delays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from dataclasses import dataclass, field

from nanokube.api.errors import NotFound
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .node import NodeConfig, NodeHeartbeat
from .podworker import PodWorkers
from .runtime.fake import RUNTIME_NAME, FakeRuntime, FakeRuntimeSettings
from .runtime.interface import ContainerEvent, ContainerStatus, EventType
from .status import StatusManager
from .sync import PodSyncer, SyncSettings

log = logging.getLogger(__name__)
SIM_NODE_ANNOTATION = "sim.nanokube.io/node"
STOPPED_ANNOTATION = "sim.nanokube.io/stopped"
READY_AFTER = "sim.nanokube.io/ready-after-seconds"


@dataclass
class SimSettings:
    nodes: int = 1
    name_prefix: str = "sim-node-"
    names: list[str] = field(default_factory=list)  # explicit names instead of prefix + index
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)  # added to the standard ones
    taints: list[JSON] = field(default_factory=list)  # e.g. {"key": "k", "value": "v", "effect": "NoSchedule"}
    pod_cidr_base: str = "10.42.0.0"  # node i gets the i-th /24 from here
    reserved_cidrs: tuple[str, ...] = ("10.43.0.0/16",)  # skipped (the service range)
    node_ip_base: str = "172.30.0.0"  # node i's InternalIP is this + i + 1
    lease_interval: float = 10.0
    lease_duration: int = 40
    status_interval: float = 60.0
    pod_start_delay: tuple[float, float] = (0.0, 1.0)  # ContainerCreating, seconds (uniform)
    image_pull_delay: tuple[float, float] = (0.0, 0.0)
    backoff_initial: float = 10.0  # CrashLoopBackOff: 10 s doubling to 5 min, as the kubelet
    backoff_max: float = 300.0
    events: bool = True  # Pulled/Created/Started/Killing/BackOff Events (costs one write each)
    kubelet_version: str = "v1.37.0"
    status_concurrency: int = 64
    heartbeat_concurrency: int = 128
    seed: int | None = None


def node_pod_cidr(index: int, base: str = "10.42.0.0", reserved: tuple[str, ...] = ("10.43.0.0/16",)) -> str:
    """The ``index``-th /24 from ``base``, stepping over ``reserved`` ranges."""
    start = int(ipaddress.IPv4Address(base))
    address = start + index * 256
    for net in sorted(ipaddress.IPv4Network(r) for r in reserved):
        first = int(net.network_address)
        if start <= first <= address:
            address += net.num_addresses
    return f"{ipaddress.IPv4Address(address)}/24"


def node_config(name: str, index: int, settings: SimSettings) -> NodeConfig:
    ip = str(ipaddress.IPv4Address(settings.node_ip_base) + index + 1)
    capacity = {"cpu": settings.cpu, "memory": settings.memory, "pods": str(settings.pods),
                "ephemeral-storage": settings.ephemeral_storage, "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "sim", **settings.labels}
    info = {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": f"{RUNTIME_NAME}://0.1.0",
            "kernelVersion": "6.1.0-sim", "kubeProxyVersion": "", "kubeletVersion": settings.kubelet_version,
            "machineID": "", "operatingSystem": "linux", "osImage": "nanokube simulated node", "systemUUID": ""}
    return NodeConfig(name, capacity, labels=labels, annotations={SIM_NODE_ANNOTATION: "true"},
                      taints=[dict(t) for t in settings.taints], addresses=[("InternalIP", ip), ("Hostname", name)],
                      pod_cidr=node_pod_cidr(index, settings.pod_cidr_base, settings.reserved_cidrs),
                      node_info=info, provider_id=f"nanokube-sim://{name}")


def _seconds(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def sim_readiness(pod: JSON, spec: JSON, status: ContainerStatus, now: float) -> tuple[bool, float | None]:
    """Ready once ``sim.nanokube.io/ready-after-seconds`` have passed since the container started."""
    notes = pod["metadata"].get("annotations") or {}
    delay = _seconds(notes.get(f"{READY_AFTER}.{spec['name']}", notes.get(READY_AFTER)))
    if delay is None:
        return True, None
    left = status.started_at + delay - now
    return (True, None) if left <= 0 else (False, left)


async def set_node_stopped(client: Client, name: str, stopped: bool) -> None:
    """Stop or start simulated node ``name`` through the API (a running Simulator obeys)."""
    nodes = client.registry.get("", "v1", "nodes")
    assert nodes is not None
    value = "true" if stopped else None
    await client.patch(nodes, "", name, {"metadata": {"annotations": {STOPPED_ANNOTATION: value}}})


@dataclass
class SimNode:
    name: str
    index: int
    config: NodeConfig
    runtime: FakeRuntime
    syncer: PodSyncer
    pods: set[str] = field(default_factory=set)  # uids bound here
    stopped: bool = False
    stopped_by_annotation: bool = False


class Simulator:
    def __init__(self, client: Client, settings: SimSettings | None = None) -> None:
        self.client = client
        self.settings = settings or SimSettings()
        s = self.settings
        pods, nodes = client.registry.get("", "v1", "pods"), client.registry.get("", "v1", "nodes")
        assert pods is not None and nodes is not None
        self.nodes_res = nodes
        self.rng = random.Random(s.seed)
        self.pods = Informer(client, pods, field_selector="spec.nodeName!=")
        self.node_informer = Informer(client, nodes)
        self.status = StatusManager(client, concurrency=s.status_concurrency, lookup=self._lookup)
        self.workers = PodWorkers(self._sync)
        self.heartbeat = NodeHeartbeat(client, lease_interval=s.lease_interval, lease_duration=s.lease_duration,
                                       status_interval=s.status_interval, concurrency=s.heartbeat_concurrency,
                                       on_gone=self._node_gone, rng=self.rng)
        self.nodes: dict[str, SimNode] = {}
        self._where: dict[str, tuple[str, str]] = {}  # pod uid -> (node name, informer key)
        self._next_index = 0
        self._background: set[asyncio.Task[None]] = set()
        # Set while every node added so far is registered (cleared again by add_node).
        self.ready = self.heartbeat.all_registered
        self.pods.add_handler(self._on_pod)
        self.node_informer.add_handler(self._on_node)
        names = s.names or [f"{s.name_prefix}{i}" for i in range(s.nodes)]
        for name in names:
            self.heartbeat.add(self._make_node(name).config)

    # -- nodes --------------------------------------------------------------------------------------------
    def _make_node(self, name: str, config: NodeConfig | None = None) -> SimNode:
        index = self._next_index
        self._next_index += 1
        config = config or node_config(name, index, self.settings)
        s = self.settings
        runtime = FakeRuntime(FakeRuntimeSettings(sandbox_delay=s.pod_start_delay, pull_delay=s.image_pull_delay),
                              pod_cidr=config.pod_cidr, rng=self.rng)
        runtime.subscribe(self._on_container_event)
        recorder = EventRecorder(self.client, "kubelet", host=name) if s.events else None
        syncer = PodSyncer(SyncSettings(name, config.internal_ips, RUNTIME_NAME, s.backoff_initial, s.backoff_max),
                           runtime, self.status, recorder=recorder, readiness=sim_readiness)
        node = self.nodes[name] = SimNode(name, index, config, runtime, syncer)
        for pod in self.pods.items():  # Pods bound before the node was known (adopted or added later)
            if pod["spec"].get("nodeName") == name:
                self._on_pod("ADDED", pod, None)
        return node

    def add_node(self, name: str | None = None, *, labels: dict[str, str] | None = None,
                 taints: list[JSON] | None = None) -> str:
        """Add a node while running (registered by the heartbeat task); returns its name."""
        name = name or f"{self.settings.name_prefix}{self._next_index}"
        node = self._make_node(name)
        node.config.labels.update(labels or {})
        if taints is not None:
            node.config.taints = [dict(t) for t in taints]
        self.heartbeat.add(node.config)
        return name

    def stop_node(self, name: str) -> None:
        """The node goes silent: no heartbeats, its Pods frozen (pending writes dropped)."""
        node = self.nodes[name]
        if node.stopped:
            return
        node.stopped = True
        self.heartbeat.pause(name)
        self.status.drop_pending(node.pods)
        log.info("simulated node %s stopped", name)

    def start_node(self, name: str) -> None:
        """The node comes back: heartbeats at once, every Pod resynced."""
        node = self.nodes[name]
        if not node.stopped:
            return
        node.stopped = node.stopped_by_annotation = False
        self.heartbeat.resume(name)
        for uid in node.pods:
            self.workers.update(uid)
        log.info("simulated node %s started", name)

    def _node_gone(self, name: str) -> None:
        node = self.nodes.pop(name, None)
        if node is not None:
            for uid in node.pods:
                self.workers.forget(uid)
                self._where.pop(uid, None)
                self.status.forget(uid)

    def _on_node(self, kind: str, obj: JSON, old: JSON | None) -> None:
        meta = obj["metadata"]
        name = meta["name"]
        node = self.nodes.get(name)
        if kind == "DELETED":
            if node is not None:
                self.heartbeat.remove(name)
                self._node_gone(name)
            return
        notes = meta.get("annotations") or {}
        if node is None:
            if notes.get(SIM_NODE_ANNOTATION) == "true":
                task = asyncio.get_running_loop().create_task(self._adopt(obj))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return
        wants_stop = notes.get(STOPPED_ANNOTATION) == "true"
        if wants_stop and not node.stopped:
            self.stop_node(name)
            node.stopped_by_annotation = True
        elif not wants_stop and node.stopped and node.stopped_by_annotation:
            self.start_node(name)

    async def _adopt(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        if name in self.nodes:
            return
        node = self._make_node(name)
        existing = (obj.get("spec") or {}).get("podCIDR")
        if existing:
            node.config.pod_cidr = existing
            await node.runtime.update_runtime_config(existing)
        else:
            cidr = node.config.pod_cidr
            with contextlib.suppress(NotFound):
                await self.client.patch(self.nodes_res, "", name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        node.config.labels = {**node.config.labels, **(obj["metadata"].get("labels") or {})}
        self.heartbeat.add(node.config)
        log.info("adopted simulated node %s", name)

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
        if old is None or _needs_sync(pod, old):
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
            return None
        pod = self.pods.get(where[1])
        if pod is None or pod["metadata"]["uid"] != uid:
            await node.syncer.cleanup(uid)
            node.pods.discard(uid)
            self._where.pop(uid, None)
            self.workers.forget(uid)
            return None
        return await node.syncer.sync(pod)

    # -- running ------------------------------------------------------------------------------------------
    async def run(self, *, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.node_informer.run(stop=stop), name="sim-node-informer"),
                 asyncio.create_task(self.pods.run(stop=stop), name="sim-pod-informer"),
                 asyncio.create_task(self.heartbeat.run(stop=stop), name="sim-heartbeat"),
                 asyncio.create_task(self.status.run(stop=stop), name="sim-status")]
        try:
            await stop.wait()
        finally:
            await self.workers.shutdown()
            for task in tasks + list(self._background):
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

def _needs_sync(pod: JSON, old: JSON) -> bool:
    """A change the node must act on (not the echo of its own status write)."""
    meta, before = pod["metadata"], old["metadata"]
    for key in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if meta.get(key) != before.get(key):
            return True
    if meta.get("annotations") != before.get("annotations"):
        return True
    if pod["spec"].get("readinessGates"):
        return (pod.get("status") or {}).get("conditions") != (old.get("status") or {}).get("conditions")
    return False
