"""The native runtime's records: a sandbox or container in memory, as JSON on disk, and its removal.

Each sandbox directory holds ``sandbox.json`` (its config, status and network namespace); each container
directory holds ``container.json`` (its status as of creation or start, its shim's identity) next to the
``exit.json`` its shim writes when the container ends. Files are replaced atomically (write, rename), so an
agent crash leaves either the old or the new record; a restarted agent reads them back (``recovery.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cgroups import Cgroup
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
from .rootfs import unmount


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically. No fsync: the records must survive the agent, not the machine (after a
    reboot no container is left to re-adopt). The temporary name is the writing thread's own."""
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


async def store_json(path: Path, data: dict[str, Any]) -> None:
    """``write_json`` on a worker thread: on a busy disk, creating or replacing a file can take milliseconds,
    and the event loop (the API server's too, in ``nanokube up``) must not wait for it."""
    await asyncio.to_thread(write_json, path, data)


def read_json(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- sandboxes --------------------------------------------------------------------------------------------

@dataclass
class Sandbox:
    config: PodSandboxConfig
    status: PodSandboxStatus
    dir: Path
    netns: str = ""  # "" : the host's network

    @property
    def uid(self) -> str:
        return self.config.metadata.uid

    def save(self, *, creating: bool = False) -> None:
        """``creating``: network setup is under way (a restarted agent tears down what it finds of it)."""
        write_json(self.dir / "sandbox.json", self.record(creating))

    async def store(self, *, creating: bool = False) -> None:
        """``save`` off the event loop (the record is taken now, written on a thread)."""
        await store_json(self.dir / "sandbox.json", self.record(creating))

    def record(self, creating: bool = False) -> dict[str, Any]:
        status = self.status
        return {"config": dataclasses.asdict(self.config), "netns": self.netns, "creating": creating,
                "status": {"id": status.id, "state": str(status.state), "created_at": status.created_at,
                           "ip": status.ip, "additional_ips": list(status.additional_ips)}}

    @classmethod
    def load(cls, directory: Path) -> tuple[Sandbox, bool] | None:
        """The sandbox recorded in ``directory`` and whether it was still being created."""
        data = read_json(directory / "sandbox.json")
        if data is None:
            return None
        c, s = data["config"], data["status"]
        dns = c.get("dns")
        config = PodSandboxConfig(
            PodSandboxMetadata(**c["metadata"]), hostname=c.get("hostname", ""),
            host_network=bool(c.get("host_network")), labels=dict(c.get("labels") or {}),
            annotations=dict(c.get("annotations") or {}),
            port_mappings=[PortMapping(**p) for p in c.get("port_mappings") or []],
            dns=DNSConfig(tuple(dns["servers"]), tuple(dns["searches"]), tuple(dns["options"])) if dns else None,
            log_directory=c.get("log_directory", ""), cgroup_parent=c.get("cgroup_parent", ""))
        status = PodSandboxStatus(s["id"], config.metadata, SandboxState(s["state"]), float(s["created_at"]),
                                  s.get("ip", ""), list(s.get("additional_ips") or []), labels=config.labels,
                                  annotations=config.annotations)
        return cls(config, status, directory, str(data.get("netns", ""))), bool(data.get("creating"))

    def public_status(self) -> PodSandboxStatus:
        return dataclasses.replace(self.status, additional_ips=list(self.status.additional_ips))


# -- containers -------------------------------------------------------------------------------------------

@dataclass
class Container:
    status: ContainerStatus
    dir: Path
    cgroups_path: str
    tty: bool = False
    shim_pid: int = 0
    shim_start: int = 0  # the shim's start time (with the pid, its identity across pid reuse)
    popen: subprocess.Popen[bytes] | None = None  # the shim, when this agent started it
    watch: int = -1  # a pidfd of the shim while its exit is awaited
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    starting: bool = False
    exit_pending: bool = False  # the shim exited while ``runc start`` ran

    def save(self) -> None:
        write_json(self.dir / "container.json", self.record())

    async def store(self) -> None:
        """``save`` off the event loop (the record is taken now, written on a thread)."""
        await store_json(self.dir / "container.json", self.record())

    def record(self) -> dict[str, Any]:
        status = dataclasses.asdict(self.status)
        status["state"] = str(self.status.state)
        return {"status": status, "cgroups_path": self.cgroups_path, "tty": self.tty, "shim_pid": self.shim_pid,
                "shim_start": self.shim_start}

    @classmethod
    def load(cls, directory: Path) -> Container | None:
        data = read_json(directory / "container.json")
        if data is None or not data.get("shim_pid"):
            return None
        fields = dict(data["status"])
        fields["metadata"] = ContainerMetadata(**fields["metadata"])
        fields["state"] = ContainerState(fields["state"])
        known = {f.name for f in dataclasses.fields(ContainerStatus)}
        status = ContainerStatus(**{k: v for k, v in fields.items() if k in known})
        return cls(status, directory, str(data["cgroups_path"]), tty=bool(data.get("tty")),
                   shim_pid=int(data["shim_pid"]), shim_start=int(data.get("shim_start") or 0))

    def public_status(self) -> ContainerStatus:
        return copy.copy(self.status)

    def shim_alive(self) -> bool:
        return bool(self.shim_start) and process_start_time(self.shim_pid) == self.shim_start

    def apply_exit(self, result: dict[str, Any]) -> None:
        """Record the end the shim wrote to exit.json (or the agent made up for a lost shim)."""
        status = self.status
        code = int(result.get("exit_code", 255))
        status.state = ContainerState.EXITED
        status.exit_code = code
        status.finished_at = float(result.get("finished_at") or time.time())
        if result.get("oom_killed"):
            status.reason = "OOMKilled"
        elif status.message and not status.started_at:
            status.reason = "StartError"
        else:
            status.reason = "Completed" if code == 0 else "Error"
        if result.get("message"):
            status.message = str(result["message"])
        self.exited.set()


def lost_shim(clock: float) -> dict[str, Any]:
    return {"exit_code": 255, "signal": 0, "finished_at": clock, "oom_killed": False,
            "message": "the container's shim exited unexpectedly"}


def process_start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


# -- removal (blocking: run in a thread) ------------------------------------------------------------------

def remove_container_dir(cgroup: Cgroup | None, directory: Path) -> None:
    """Kill what is left in the container's cgroup, remove the cgroup, unmount the rootfs, delete the dir."""
    if cgroup is not None:
        cgroup.kill_all()
        cgroup.destroy()
    unmount(directory / "rootfs")
    shutil.rmtree(directory, ignore_errors=True)


def remove_empty_dirs(root: Path) -> None:
    """Remove ``root`` and the directories under it that hold no files."""
    if not root.is_dir():
        return
    for path, _dirs, _files in sorted(os.walk(root), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def disk_usage(root: Path) -> int:
    """Bytes allocated to the files under ``root`` (a container's writable layer)."""
    total = 0
    for path, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(path, name)).st_blocks * 512
    return total
