"""Simulated nodes: N Nodes that register, heartbeat and run their Pods on the fake runtime, from one process.

``Simulator(client, SimSettings(nodes=5000)).run(stop=stop)`` is ``nanokube sim --nodes N``. It is the node
agent's own core (``agent.NodeAgent``) with many nodes behind it instead of one, shaped to scale: one
``NodeHeartbeat`` task renews every Lease and reports every Node status; one Pod informer (``spec.nodeName!=``)
dispatches each bound Pod to its node's ``PodSyncer`` through shared ``PodWorkers`` (a task per Pod only while
it has work); one ``StatusManager`` batches every status write; container exits are timers in each node's
``FakeRuntime``. What is simulation-only lives here: node names, capacities and CIDRs from ``SimSettings``,
readiness from an annotation, and obeying the annotations below.

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

Logs, exec, attach and port-forward reach simulated Pods through one ``server.KubeletServer`` for all nodes:
``serve_kubelet(address, port)`` (before ``run``) makes every Node advertise it (``daemonEndpoints`` port and
the ``nanokube.io/kubelet-address`` annotation, since the made-up InternalIPs lead nowhere).

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
import uuid
from dataclasses import dataclass, field

from nanokube.api.errors import NotFound
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .agent import AgentNode, AgentSettings, NodeAgent
from .node import NodeConfig, NodeHeartbeat
from .podworker import PodWorkers
from .runtime.fake import RUNTIME_NAME, FakeRuntime, FakeRuntimeSettings
from .runtime.interface import ContainerStatus
from .server import KUBELET_ADDRESS_ANNOTATION
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
    kubelet_address: str = ""  # where the shared kubelet server listens (see serve_kubelet)
    kubelet_port: int = 10250
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
    machine = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.sim.nanokube.io")  # stable per name
    info = {"architecture": "amd64", "bootID": str(uuid.uuid4()),
            "containerRuntimeVersion": f"{RUNTIME_NAME}://0.1.0", "kernelVersion": "6.1.0-sim",
            "kubeProxyVersion": "", "kubeletVersion": settings.kubelet_version, "machineID": machine.hex,
            "operatingSystem": "linux", "osImage": "nanokube simulated node", "systemUUID": str(machine)}
    annotations = {SIM_NODE_ANNOTATION: "true"}
    if settings.kubelet_address:
        annotations[KUBELET_ADDRESS_ANNOTATION] = settings.kubelet_address
    return NodeConfig(name, capacity, labels=labels, annotations=annotations,
                      taints=[dict(t) for t in settings.taints], addresses=[("InternalIP", ip), ("Hostname", name)],
                      pod_cidr=node_pod_cidr(index, settings.pod_cidr_base, settings.reserved_cidrs),
                      node_info=info, provider_id=f"nanokube-sim://{name}", kubelet_port=settings.kubelet_port)


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


class Simulator:
    def __init__(self, client: Client, settings: SimSettings | None = None) -> None:
        self.client = client
        self.settings = s = settings or SimSettings()
        nodes = client.registry.get("", "v1", "nodes")
        assert nodes is not None
        self.nodes_res = nodes
        self.rng = random.Random(s.seed)
        self.agent = NodeAgent(client, AgentSettings(
            pod_field_selector="spec.nodeName!=", lease_interval=s.lease_interval, lease_duration=s.lease_duration,
            status_interval=s.status_interval, status_concurrency=s.status_concurrency,
            heartbeat_concurrency=s.heartbeat_concurrency), rng=self.rng)
        self.node_informer = Informer(client, nodes)
        self.node_informer.add_handler(self._on_node)
        self._next_index = 0
        self._by_annotation: set[str] = set()  # nodes stopped through the annotation
        self._background: set[asyncio.Task[None]] = set()
        for name in s.names or [f"{s.name_prefix}{i}" for i in range(s.nodes)]:
            self._add(node_config(name, self._take_index(), s))

    # The agent's parts, for callers that watch them (benchmarks, tests).
    @property
    def nodes(self) -> dict[str, AgentNode]:
        return self.agent.nodes

    @property
    def heartbeat(self) -> NodeHeartbeat:
        return self.agent.heartbeat

    @property
    def status(self) -> StatusManager:
        return self.agent.status

    @property
    def workers(self) -> PodWorkers:
        return self.agent.workers

    @property
    def ready(self) -> asyncio.Event:
        """Set while every node added so far is registered (cleared again by ``add_node``)."""
        return self.agent.ready

    # -- nodes --------------------------------------------------------------------------------------------
    def _take_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _add(self, config: NodeConfig) -> AgentNode:
        s = self.settings
        runtime = FakeRuntime(FakeRuntimeSettings(sandbox_delay=s.pod_start_delay, pull_delay=s.image_pull_delay),
                              pod_cidr=config.pod_cidr, rng=self.rng)
        recorder = EventRecorder(self.client, "kubelet", host=config.name) if s.events else None
        syncer = PodSyncer(SyncSettings(config.name, config.internal_ips, RUNTIME_NAME, s.backoff_initial,
                                        s.backoff_max), runtime, self.agent.status, recorder=recorder,
                           readiness=sim_readiness)
        return self.agent.add_node(config, runtime, syncer)

    def add_node(self, name: str | None = None, *, labels: dict[str, str] | None = None,
                 taints: list[JSON] | None = None) -> str:
        """Add a node while running (registered by the heartbeat task); returns its name."""
        index = self._take_index()
        config = node_config(name or f"{self.settings.name_prefix}{index}", index, self.settings)
        config.labels.update(labels or {})
        if taints is not None:
            config.taints = [dict(t) for t in taints]
        return self._add(config).name

    def serve_kubelet(self, address: str, port: int) -> None:
        """Advertise the kubelet server at ``address:port`` on every node (call before ``run``: Nodes carry it
        from registration on)."""
        self.settings.kubelet_address, self.settings.kubelet_port = address, port
        for node in self.agent.nodes.values():
            node.config.kubelet_port = port
            node.config.annotations[KUBELET_ADDRESS_ANNOTATION] = address

    def stop_node(self, name: str) -> None:
        """The node goes silent: no heartbeats, its Pods frozen (pending writes dropped)."""
        self.agent.stop_node(name)

    def start_node(self, name: str) -> None:
        """The node comes back: heartbeats at once, every Pod resynced."""
        self._by_annotation.discard(name)
        self.agent.start_node(name)

    def _on_node(self, kind: str, obj: JSON, old: JSON | None) -> None:
        meta = obj["metadata"]
        name = meta["name"]
        node = self.agent.nodes.get(name)
        if kind == "DELETED":
            if node is not None:
                self.agent.remove_node(name)
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
            self._by_annotation.add(name)
        elif not wants_stop and node.stopped and name in self._by_annotation:
            self.start_node(name)

    async def _adopt(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        if name in self.agent.nodes:
            return
        config = node_config(name, self._take_index(), self.settings)
        existing = (obj.get("spec") or {}).get("podCIDR")
        if existing:
            config.pod_cidr = existing
        else:
            with contextlib.suppress(NotFound):
                await self.client.patch(self.nodes_res, "", name,
                                        {"spec": {"podCIDR": config.pod_cidr, "podCIDRs": [config.pod_cidr]}})
        config.labels = {**config.labels, **(obj["metadata"].get("labels") or {})}
        if name not in self.agent.nodes:
            self._add(config)
            log.info("adopted simulated node %s", name)

    # -- running ------------------------------------------------------------------------------------------
    async def run(self, *, stop: asyncio.Event) -> None:
        try:
            await self.agent.run(stop=stop, also=(self._run_node_informer,))
        finally:
            for task in list(self._background):
                task.cancel()

    async def _run_node_informer(self, stop: asyncio.Event) -> None:
        await self.node_informer.run(stop=stop)
