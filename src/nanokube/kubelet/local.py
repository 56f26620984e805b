"""The local node: this machine as a worker, its Pods run as real containers by the native runtime.

``LocalNode`` assembles what the parts already provide: the CNI pod network on the node's pod CIDR, the
image store, the runc runtime (re-adopting containers left running by a previous agent), the node agent
(registration, Lease, Pod workers, status) and the kubelet server for logs, exec, attach and port-forward.
``native_available()`` says whether this machine can run it (root, runc and the CNI plugins).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nanokube.client.events import EventRecorder
from nanokube.client.interface import Client

from .agent import AgentSettings, NodeAgent
from .images.store import ImageStore
from .network import PodNetwork, PodNetworkConfig
from .node import NodeConfig
from .podenv import EnvResolver
from .podfiles import PodFiles, PodFileSettings
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
    cluster_dns: tuple[str, ...] = ("10.43.0.10",)  # the kubelet's clusterDNS: ClusterFirst Pods' nameserver
    cluster_domain: str = "cluster.local"


class LocalNode:
    def __init__(self, client: Client, settings: LocalNodeSettings) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.name or socket.gethostname().lower()
        self.network: PodNetwork | None = None
        self.runtime: NativeRuntime | None = None

    def config(self, host_ip: str) -> NodeConfig:
        data = self.settings.data_dir
        disk = shutil.disk_usage(data)
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{_memory_kib()}Ki",
                    "pods": str(self.settings.max_pods), "ephemeral-storage": f"{disk.total // 1024}Ki"}
        info = {"architecture": "amd64", "containerRuntimeVersion": "native://runc",
                "kernelVersion": platform.release(), "kubeletVersion": "v1.37.0", "operatingSystem": "linux",
                "osImage": _os_image(), "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                  "node-role.kubernetes.io/control-plane": ""}
        return NodeConfig(self.name, capacity, labels=labels, addresses=[("InternalIP", host_ip),
                                                                         ("Hostname", self.name)],
                          annotations={KUBELET_ADDRESS_ANNOTATION: "127.0.0.1"},
                          pod_cidr=self.settings.pod_cidr, node_info=info, provider_id=f"nanokube://{self.name}")

    async def run(self, *, stop: asyncio.Event) -> None:
        data = self.settings.data_dir
        state = data / "node"
        state.mkdir(parents=True, exist_ok=True)
        network = self.network = PodNetwork(PodNetworkConfig(pod_cidr=self.settings.pod_cidr, state_dir=str(state),
                                                             bridge=self.settings.bridge))
        await network.start()
        await network.recover()
        images = ImageStore(data / "images")
        await images.collect_garbage()
        runtime = self.runtime = NativeRuntime(NativeSettings(state_dir=state, masked_host_paths=(str(data),)),
                                               network, images)
        await runtime.recover()
        host_ip = await asyncio.to_thread(_host_ip)
        agent = NodeAgent(self.client, AgentSettings(pod_field_selector=f"spec.nodeName={self.name}"))
        config = self.config(host_ip)
        env = EnvResolver(self.client, node_allocatable=config.allocatable or config.capacity)
        pod_files = PodFiles(PodFileSettings(self.settings.cluster_dns, self.settings.cluster_domain))
        volumes = VolumeManager(self.client, state / "pods", node_allocatable=env.node_allocatable,
                                pod_files=pod_files)
        syncer = PodSyncer(SyncSettings(self.name, (host_ip,), runtime_name="native"), runtime, agent.status,
                           recorder=EventRecorder(self.client, "kubelet", host=self.name),
                           env=env, volumes=volumes)
        server = KubeletServer(agent, KubeletServerSettings(host="127.0.0.1", port=0,
                                                           token=self.settings.kubelet_token))
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server_task = asyncio.create_task(server.run(stop=stop, started=port.set_result), name="local-kubelet")
        config.kubelet_port = await port
        agent.add_node(config, runtime, syncer)
        log.info("local node %s: native runtime (runc), pod network %s on bridge %s", self.name,
                 self.settings.pod_cidr, self.settings.bridge)
        try:
            await agent.run(stop=stop)
        finally:
            await server_task
            await runtime.close()  # containers keep running for the next agent
            await network.shutdown()


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"
