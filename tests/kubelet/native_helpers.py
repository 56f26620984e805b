"""Helpers for the native runtime's root tests: prerequisites, a runtime in a private state dir, Pods and
containers in a line each, and a check that nothing (runc containers, mounts, cgroups, namespaces, shims) is
left on the host afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nanokube.kubelet.runtime.cgroups import Cgroup, detect
from nanokube.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerMetadata,
    ContainerState,
    ContainerStatus,
    LinuxResources,
    LogOptions,
    PodSandboxConfig,
    PodSandboxMetadata,
)
from nanokube.kubelet.runtime.native import NativeRuntime, NativeSettings
from nanokube.kubelet.runtime.rootfs import DirectoryImageStore, build_busybox_rootfs
from nanokube.kubelet.runtime.sandbox import NETNS_DIR, NamespaceOnlyNetwork, PodNetwork

BUSYBOX = "nanokube.test/busybox:1.35"


def require_native() -> None:
    """Fail (not skip) when the machine cannot run the native runtime: CI runs these as root after
    installing the Debian packages runc, busybox-static and iproute2."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root")
    for tool, package in (("runc", "runc"), ("ip", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            problems.append(f"{tool} (Debian package {package})")
    busybox = Path("/bin/busybox")
    if not busybox.exists() or b"ld-linux" in busybox.read_bytes()[:8192]:
        problems.append("a static /bin/busybox (Debian package busybox-static)")
    if problems:
        pytest.fail("the native runtime tests need " + ", ".join(problems))


@dataclass
class Native:
    """A runtime under test and what it owns on the host."""

    runtime: NativeRuntime
    settings: NativeSettings
    network: PodNetwork
    store: DirectoryImageStore
    logs: Path
    netns_prefix: str
    sandboxes: dict[str, PodSandboxConfig] = field(default_factory=dict)

    def new_runtime(self) -> NativeRuntime:
        """A second runtime object on the same state (an agent restart)."""
        self.runtime = NativeRuntime(self.settings, self.network, self.store)
        return self.runtime

    async def pod(self, name: str, **kwargs: object) -> str:
        uid = f"{name}-{secrets.token_hex(4)}"
        config = PodSandboxConfig(PodSandboxMetadata(name, "default", uid), hostname=name,
                                  log_directory=str(self.logs / f"default_{name}_{uid}"), **kwargs)  # type: ignore[arg-type]
        sid = await self.runtime.run_pod_sandbox(config)
        self.sandboxes[sid] = config
        return sid

    async def run(self, sid: str, name: str, command: list[str], *, image: str = BUSYBOX, attempt: int = 0,
                  start: bool = True, resources: LinuxResources | None = None, **kwargs: object) -> str:
        config = ContainerConfig(ContainerMetadata(name, attempt), image, command=command,
                                 log_path=f"{name}/{attempt}.log", resources=resources, **kwargs)  # type: ignore[arg-type]
        cid = await self.runtime.create_container(sid, config, self.sandboxes[sid])
        if start:
            await self.runtime.start_container(cid)
        return cid

    async def wait_exit(self, cid: str, timeout: float = 20.0) -> ContainerStatus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status = await self.runtime.container_status(cid)
            if status.state is ContainerState.EXITED:
                return status
            if loop.time() > deadline:
                raise AssertionError(f"container {status.metadata.name} did not exit: {status}")
            await asyncio.sleep(0.02)

    async def log(self, cid: str, **options: object) -> bytes:
        chunks = [c async for c in self.runtime.logs(cid, LogOptions(**options))]  # type: ignore[arg-type]
        return b"".join(chunks)

    async def wait_log(self, cid: str, text: bytes, timeout: float = 20.0) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in (found := await self.log(cid)):
            if loop.time() > deadline:
                raise AssertionError(f"{text!r} never appeared in the log: {found!r}")
            await asyncio.sleep(0.02)
        return found


def runc_ids(settings: NativeSettings) -> list[str]:
    out = subprocess.run(["runc", "--root", str(settings.state_dir / "runc"), "list", "--format", "json"],
                         capture_output=True, text=True).stdout
    return [c["id"] for c in json.loads(out or "null") or []]


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def cgroup_dirs(cgroup_root: str) -> list[str]:
    layout = detect()
    return [str(p) for d in Cgroup(layout, cgroup_root).dirs() for p in d.iterdir() if p.is_dir()]


def netns_names(prefix: str) -> list[str]:
    return [n for n in os.listdir(NETNS_DIR) if n.startswith(prefix)] if NETNS_DIR.is_dir() else []


def shims(state_dir: Path, *, spares: bool = True) -> list[int]:
    """Live (not zombie) shim processes of this state dir: containers' shims (working in a container's
    directory), and the spare or zygote (which name the state dir on their command line) unless told not."""
    found = []
    containers = str(state_dir / "containers")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"shim.py" not in cmdline:
                continue
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{pid}/cwd")
            ours = cwd.startswith(containers) or (spares and str(state_dir).encode() in cmdline)
            if ours and state != "Z":
                found.append(int(pid))
    return found


def leftovers(native: Native, *, spare: bool = True) -> dict[str, list[str]]:
    """What the runtime left on the host (empty lists when it cleaned up); ``spare``: count the spare shim
    too (it lives until the runtime is closed)."""
    s = native.settings
    return {"runc": runc_ids(s), "mounts": mounts_under(s.state_dir), "cgroups": cgroup_dirs(s.cgroup_root),
            "netns": netns_names(native.netns_prefix),
            "shims": [str(p) for p in shims(s.state_dir, spares=spare)],
            "containers": os.listdir(s.state_dir / "containers"), "sandboxes": os.listdir(s.state_dir / "sandboxes")}


def force_clean(native: Native) -> None:
    """Remove whatever a failed test left, by the ids this runtime used."""
    s = native.settings
    for cid in runc_ids(s):
        subprocess.run(["runc", "--root", str(s.state_dir / "runc"), "delete", "--force", cid], capture_output=True)
    for pid in shims(s.state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    for mount in sorted(mounts_under(s.state_dir), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    for name in netns_names(native.netns_prefix):
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    cgroup = Cgroup(detect(), s.cgroup_root)
    cgroup.kill_all()
    cgroup.destroy()


def make_native(tmp: Path, busybox_rootfs: Path) -> Native:
    token = secrets.token_hex(3)
    settings = NativeSettings(state_dir=tmp / "node", cgroup_root=f"nanokube-test-{token}")
    network = NamespaceOnlyNetwork(prefix=f"nkt{token}-")
    store = DirectoryImageStore()
    store.add(BUSYBOX, busybox_rootfs)
    return Native(NativeRuntime(settings, network, store), settings, network, store, tmp / "logs", network.prefix)


def busybox(tmp: Path) -> Path:
    return build_busybox_rootfs(tmp / "busybox")
