"""The native runtime's records on disk: what a restarted agent reads back to re-adopt its Pods.

Each sandbox directory holds ``sandbox.json`` (its config, status and network namespace); each container
directory holds ``container.json`` (its status as of creation or start, its shim's identity) next to the
``exit.json`` its shim writes when the container ends. Files are replaced atomically (write, fsync, rename), so
a crash leaves either the old or the new record. This module only converts and writes; it decides nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .interface import (
    ContainerMetadata,
    ContainerState,
    ContainerStatus,
    DNSConfig,
    PodSandboxConfig,
    PodSandboxMetadata,
    PodSandboxStatus,
    PortMapping,
    SandboxState,
)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sandbox_config_to_json(config: PodSandboxConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def sandbox_config_from_json(data: dict[str, Any]) -> PodSandboxConfig:
    dns = data.get("dns")
    return PodSandboxConfig(
        PodSandboxMetadata(**data["metadata"]), hostname=data.get("hostname", ""),
        host_network=bool(data.get("host_network")), labels=dict(data.get("labels") or {}),
        annotations=dict(data.get("annotations") or {}),
        port_mappings=[PortMapping(**p) for p in data.get("port_mappings") or []],
        dns=DNSConfig(tuple(dns["servers"]), tuple(dns["searches"]), tuple(dns["options"])) if dns else None,
        log_directory=data.get("log_directory", ""), cgroup_parent=data.get("cgroup_parent", ""))


def sandbox_status_to_json(status: PodSandboxStatus) -> dict[str, Any]:
    return {"id": status.id, "state": str(status.state), "created_at": status.created_at, "ip": status.ip,
            "additional_ips": list(status.additional_ips)}


def sandbox_status_from_json(data: dict[str, Any], config: PodSandboxConfig) -> PodSandboxStatus:
    return PodSandboxStatus(data["id"], config.metadata, SandboxState(data["state"]), float(data["created_at"]),
                            data.get("ip", ""), list(data.get("additional_ips") or []), labels=config.labels,
                            annotations=config.annotations)


def container_status_to_json(status: ContainerStatus) -> dict[str, Any]:
    data = dataclasses.asdict(status)
    data["state"] = str(status.state)
    return data


def container_status_from_json(data: dict[str, Any]) -> ContainerStatus:
    fields = dict(data)
    fields["metadata"] = ContainerMetadata(**fields["metadata"])
    fields["state"] = ContainerState(fields["state"])
    known = {f.name for f in dataclasses.fields(ContainerStatus)}
    return ContainerStatus(**{k: v for k, v in fields.items() if k in known})


def process_start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), 0 if it is gone;
    with the pid it identifies a process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])
