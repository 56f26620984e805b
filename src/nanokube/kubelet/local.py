"""The native node: this machine as a worker, its Pods run as real containers by the native runtime.

``LocalNode`` assembles what the parts already provide: the CNI pod network on the node's pod CIDR, the
image store, the runc runtime (re-adopting containers left running by a previous agent), the node agent
(registration, Lease, Pod workers, status), the kubelet server for logs, exec, attach and port-forward, and
the routes to the other native nodes' Pods (``network.crossnode``). The same class is ``nanokube up``'s local
node (in-process client, kubelet server on 127.0.0.1, a fixed pod CIDR) and ``nanokube agent``'s node (HTTP
client, kubelet server on the node's address, a pod CIDR the control plane allocates: with
``pod_cidr=""`` the Node is registered first and the Pod network starts once ``spec.podCIDR`` is set).
``companions`` are more per-node components (the Service proxy) started with the node's facts.
``native_available()`` says whether this machine can run it (root, runc and the CNI plugins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nanokube.api.errors import AlreadyExists
from nanokube.client.events import EventRecorder
from nanokube.client.interface import JSON, Client

from .agent import AgentSettings, NodeAgent
from .hooks import HookRunner
from .images.store import ImageStore
from .network import PodNetwork, PodNetworkConfig
from .network.crossnode import RouteManager, RouteSettings
from .node import NodeConfig, node_object
from .podenv import EnvResolver
from .podfiles import PodFiles, PodFileSettings
from .probes import ProbeManager
from .runtime.native import NativeRuntime, NativeSettings
from .server import KUBELET_ADDRESS_ANNOTATION, KubeletServer, KubeletServerSettings
from .sync import PodSyncer, SyncSettings
from .volumes import VolumeManager

log = logging.getLogger(__name__)
CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin")


def native_available() -> tuple[bool, str]:
    """(True, "") when this machine can run real containers, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not running as root"
    if shutil.which("runc") is None:
        return False, "runc is not installed (apt-get install runc)"
    if not any(Path(d, "bridge").exists() and Path(d, "host-local").exists() for d in CNI_DIRS):
        return False, "the CNI plugins are not installed (apt-get install containernetworking-plugins)"
    return True, ""


def _memory_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


def _host_ip() -> str:
    """The first global IPv4 address of this machine (read locally, nothing is sent), else 127.0.0.1."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "127.0.0.1"
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields and not fields[1].startswith(("nk", "cni", "veth")):
            return fields[fields.index("inet") + 1].split("/")[0]
    return "127.0.0.1"


@dataclass
class LocalNodeSettings:
    data_dir: Path
    name: str = ""  # default: the host name
    pod_cidr: str = "10.42.0.0/24"
    bridge: str = "nk0"
    max_pods: int = 110
    kubelet_token: str = ""
    address: str = ""  # the node's InternalIP; default: this machine's first global IPv4 address
    kubelet_host: str = "127.0.0.1"  # where the kubelet server listens (an agent: its node address)
    kubelet_port: int = 0  # 0: any free port (announced in the Node's status)
    control_plane: bool = True  # labelled node-role.kubernetes.io/control-plane (nanokube up's node)
    cluster_cidr: str = "10.42.0.0/16"  # every node's pod CIDR is in here: routed, not masqueraded
    cross_node_routes: bool = True
    vxlan_device: str = "nk.vxlan"
    # Pod namespaces are /run/netns/<prefix><uid>, and a restarted node removes every one with its prefix it
    # has no record of: nodes sharing a machine (an agent beside nanokube up, tests) need prefixes of their own.
    netns_prefix: str = "nk-"
    cluster_dns: tuple[str, ...] = ("10.43.0.10",)  # the kubelet's clusterDNS: ClusterFirst Pods' nameserver
    cluster_domain: str = "cluster.local"


@dataclass(frozen=True)
class NodeFacts:
    """What a per-node companion (the Service proxy) needs to know about its node."""

    name: str
    addresses: tuple[str, ...]
    pod_cidr: str
    cluster_cidr: str


# A companion runs next to the node until ``stop``: ``companion(client, facts, stop)``.
Companion = Callable[[Client, NodeFacts, asyncio.Event], Awaitable[None]]


class LocalNode:
    def __init__(self, client: Client, settings: LocalNodeSettings, *,
                 companions: Sequence[Companion] = ()) -> None:
        self.client = client
        self.settings = settings
        self.companions = tuple(companions)
        self.name = settings.name or socket.gethostname().lower()
        self.pod_cidr = settings.pod_cidr  # set from the Node when the control plane allocates it
        self.network: PodNetwork | None = None
        self.runtime: NativeRuntime | None = None
        self.routes: RouteManager | None = None

    def config(self, host_ip: str) -> NodeConfig:
        data = self.settings.data_dir
        disk = shutil.disk_usage(data)
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{_memory_kib()}Ki",
                    "pods": str(self.settings.max_pods), "ephemeral-storage": f"{disk.total // 1024}Ki"}
        info = {"architecture": "amd64", "containerRuntimeVersion": "native://runc",
                "kernelVersion": platform.release(), "kubeletVersion": "v1.37.0", "operatingSystem": "linux",
                "osImage": _os_image(), "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
        if self.settings.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
        kubelet_host = self.settings.kubelet_host
        announced = host_ip if kubelet_host in ("0.0.0.0", "::", "") else kubelet_host
        return NodeConfig(self.name, capacity, labels=labels, addresses=[("InternalIP", host_ip),
                                                                         ("Hostname", self.name)],
                          annotations={KUBELET_ADDRESS_ANNOTATION: announced},
                          pod_cidr=self.pod_cidr, node_info=info, provider_id=f"nanokube://{self.name}")

    async def await_pod_cidr(self, config: NodeConfig, *, stop: asyncio.Event, poll: float = 0.5) -> str:
        """Register the Node without a pod CIDR (if it is not there yet) and wait for the control plane's node
        IPAM to give it one; a Node that has one already (a restart) answers at once. "" if ``stop`` comes
        first. The kubelet-address annotation is brought up to date on the way."""
        nodes = self.client.registry.get("", "v1", "nodes")
        assert nodes is not None
        try:
            node: JSON = await self.client.create(nodes, "", node_object(config))
        except AlreadyExists:
            node = await self.client.get(nodes, "", config.name)
        wanted = config.annotations.get(KUBELET_ADDRESS_ANNOTATION, "")
        if (node["metadata"].get("annotations") or {}).get(KUBELET_ADDRESS_ANNOTATION) != wanted:
            node = await self.client.patch(nodes, "", config.name,
                                           {"metadata": {"annotations": {KUBELET_ADDRESS_ANNOTATION: wanted}}})
        logged = False
        while not stop.is_set():
            cidr = str((node.get("spec") or {}).get("podCIDR") or "")
            if cidr:
                return cidr
            if not logged:
                log.info("node %s: waiting for the control plane to allocate a pod CIDR", config.name)
                logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)
            node = await self.client.get(nodes, "", config.name)
        return ""

    async def run(self, *, stop: asyncio.Event) -> None:
        data = self.settings.data_dir
        state = data / "node"
        state.mkdir(parents=True, exist_ok=True)
        host_ip = self.settings.address or await asyncio.to_thread(_host_ip)
        if not self.pod_cidr:
            self.pod_cidr = await self.await_pod_cidr(self.config(host_ip), stop=stop)
            if not self.pod_cidr:
                return  # stopped while waiting
        network = self.network = PodNetwork(PodNetworkConfig(pod_cidr=self.pod_cidr, state_dir=str(state),
                                                             bridge=self.settings.bridge,
                                                             netns_prefix=self.settings.netns_prefix))
        await network.start()
        await network.recover()
        images = ImageStore(data / "images")
        await images.collect_garbage()
        runtime = self.runtime = NativeRuntime(NativeSettings(state_dir=state, masked_host_paths=(str(data),)),
                                               network, images)
        await runtime.recover()
        # status every 10 s, the kubelet's nodeStatusUpdateFrequency (images and conditions follow changes)
        agent = NodeAgent(self.client, AgentSettings(pod_field_selector=f"spec.nodeName={self.name}",
                                                     status_interval=10.0))
        config = self.config(host_ip)
        env = EnvResolver(self.client, node_allocatable=config.allocatable or config.capacity)
        pod_files = PodFiles(PodFileSettings(self.settings.cluster_dns, self.settings.cluster_domain))
        volumes = VolumeManager(self.client, state / "pods", node_allocatable=env.node_allocatable,
                                pod_files=pod_files)
        recorder = EventRecorder(self.client, "kubelet", host=self.name)
        probes = ProbeManager(runtime, wake=agent.workers.update, recorder=recorder)
        syncer = PodSyncer(SyncSettings(self.name, (host_ip,), runtime_name="native"), runtime, agent.status,
                           recorder=recorder, env=env, volumes=volumes, probes=probes, hooks=HookRunner(runtime))
        server = KubeletServer(agent, KubeletServerSettings(host=self.settings.kubelet_host,
                                                           port=self.settings.kubelet_port,
                                                           token=self.settings.kubelet_token))
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server_task = asyncio.create_task(server.run(stop=stop, started=port.set_result), name="local-kubelet")
        config.kubelet_port = await port
        config.images = runtime.list_images
        agent.add_node(config, runtime, syncer)
        log.info("node %s: native runtime (runc), pod network %s on bridge %s, kubelet at %s:%d", self.name,
                 self.pod_cidr, self.settings.bridge, config.annotations[KUBELET_ADDRESS_ANNOTATION],
                 config.kubelet_port)
        side = self._side_tasks(host_ip, stop)
        try:
            await agent.run(stop=stop)
        finally:
            await server_task
            for task in side:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 15)
            await probes.close()
            await runtime.close()  # containers keep running for the next agent
            await network.shutdown()

    def _side_tasks(self, host_ip: str, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """The routes to other nodes' Pods and the companions, each running until ``stop`` (the routes are
        removed on the way out)."""
        s = self.settings
        tasks = []
        if s.cross_node_routes:
            self.routes = RouteManager(self.client, RouteSettings(self.name, host_ip, self.pod_cidr,
                                                                  cluster_cidr=s.cluster_cidr,
                                                                  vxlan_device=s.vxlan_device))
            tasks.append(asyncio.create_task(self.routes.run(stop=stop), name="cross-node-routes"))
        facts = NodeFacts(self.name, (host_ip,), self.pod_cidr, s.cluster_cidr)
        for companion in self.companions:
            tasks.append(asyncio.create_task(_run_companion(companion, self.client, facts, stop)))
        return tasks


async def _run_companion(companion: Companion, client: Client, facts: NodeFacts, stop: asyncio.Event) -> None:
    await companion(client, facts, stop)


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"
