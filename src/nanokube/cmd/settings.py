"""Settings shared by the commands, built from flags and environment; no globals."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/nanokube")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nanokube"


@dataclass
class ClusterSettings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 6443
    store: str = "sqlite"  # sqlite | memory
    tls: bool = True
    service_cidr: str = "10.43.0.0/16"
    pod_cidr: str = "10.42.0.0/16"
    log_level: str = "info"
    # How many recent changes are kept for watches to resume from; older resourceVersions get 410 Expired.
    watch_history: int = 10000
    # Node failure handling (Kubernetes' defaults); `--fast-failover` shortens both for demos.
    node_grace_period: float = 40.0
    pod_toleration_seconds: int = 300
    # The local node: "native" runs real containers (root, runc, CNI), "process" plain processes (no
    # isolation), "none" runs no node here, "auto" picks native when the machine can and process otherwise.
    node: str = "auto"
    node_name: str = ""  # default: the host name
    node_pod_cidr: str = "10.42.0.0/24"  # the local node's share of pod_cidr
    node_bridge: str = "nk0"  # the local node's pod bridge
    # Simulated nodes run in this process (`nanokube up --sim-nodes N`, `nanokube sim --nodes N`).
    sim_nodes: int = 0
    sim_cpu: str = "4"
    sim_memory: str = "16Gi"
    sim_pods: int = 110
    sim_labels: dict[str, str] = field(default_factory=dict)
    sim_taints: list[dict[str, str]] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.db"
