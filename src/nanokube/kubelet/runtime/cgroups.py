"""cgroups for native containers: where they live, their limits and usage, OOM kills, killing and removal.

runc creates each container's cgroup from ``linux.cgroupsPath`` and writes its ``linux.resources``; this module
does what the runtime needs around that, on both layouts Linux has:

* cgroup v1: one hierarchy per controller (``/sys/fs/cgroup/memory``, ``.../cpu``, ...). Machines like the ones
  nanokube is developed on are "hybrid": every controller is bound to v1 and an empty cgroup2 tree is mounted
  at ``/sys/fs/cgroup/unified``; runc creates the container's directory in that tree as well.
* cgroup v2: one unified tree, controllers enabled per level through ``cgroup.subtree_control``.

A ``Cgroup`` is one absolute cgroup path (``/nanokube/pod<uid>/<container>``) seen through every mounted
hierarchy. Reading stats, OOM counters and ``cgroup.procs`` is cheap file I/O; ``destroy`` may wait briefly for
exiting tasks, so async callers run it in a thread. Nothing is cached but the layout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .interface import LinuxResources

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices", "freezer")


@dataclass(frozen=True)
class CgroupLayout:
    """The mounted cgroup hierarchies: ``controllers`` maps a v1 controller (or ``""`` for the v2 tree) to its
    mount point; ``trees`` lists every cgroup mount (named v1 hierarchies and hybrid cgroup2 trees included)."""

    version: int
    controllers: dict[str, Path]
    trees: tuple[Path, ...]

    def controller(self, name: str) -> Path | None:
        return self.controllers.get("" if self.version == 2 else name)


def detect(mountinfo: str | None = None) -> CgroupLayout:
    """Read the cgroup mounts from /proc/self/mountinfo (or the text given): v2 when the cgroup2 tree holds the
    controllers (mounted at a place with ``cgroup.controllers`` and no v1 memory hierarchy), else v1."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    v1: dict[str, Path] = {}
    trees: list[Path] = []
    unified: Path | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = Path(fields[4].replace("\\040", " "))
        fstype, _, options = line.split(" - ", 1)[1].split(" ", 2)
        if fstype == "cgroup2":
            trees.append(point)
            if unified is None or len(str(point)) < len(str(unified)):
                unified = point
        elif fstype == "cgroup":
            trees.append(point)
            for name in options.split(","):
                if name in V1_CONTROLLERS:
                    v1[name] = point
    if "memory" not in v1 and unified is not None:
        return CgroupLayout(2, {"": unified}, (unified,))
    return CgroupLayout(1, v1, tuple(dict.fromkeys(trees)))


@dataclass(frozen=True)
class CgroupStats:
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0
    cpu_usage_ns: int = 0
    pids: int = 0
    oom_kills: int = 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError, OSError):
        return ""


def _int(path: Path) -> int:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def _keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file (``memory.stat``, ``memory.events``, ``memory.oom_control``) as a dict."""
    found: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def oom_kill_count(files: list[str]) -> int:
    """The sum of ``oom_kill`` counters in ``memory.oom_control`` (v1) or ``memory.events`` (v2) files."""
    return sum(_keyed(Path(f)).get("oom_kill", 0) for f in files)


def cpu_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc and the kubelet use."""
    return 1 + ((max(2, min(shares, 262144)) - 2) * 9999) // 262142


class Cgroup:
    def __init__(self, layout: CgroupLayout, path: str) -> None:
        self.layout = layout
        self.path = "/" + path.strip("/")

    def _dir(self, mount: Path) -> Path:
        return mount / self.path.lstrip("/")

    def controller_dir(self, name: str) -> Path | None:
        mount = self.layout.controller(name)
        return None if mount is None else self._dir(mount)

    def dirs(self) -> list[Path]:
        """This cgroup's directories that exist, in every mounted hierarchy."""
        return [d for d in (self._dir(m) for m in self.layout.trees) if d.is_dir()]

    def exists(self) -> bool:
        return bool(self.dirs())

    # -- setup (runc does this for containers; pod-level cgroups and tests use it) ------------------------
    def create(self) -> None:
        if self.layout.version == 2:
            root = self.layout.controllers[""]
            parts = self.path.strip("/").split("/")
            for depth in range(len(parts)):
                parent = root.joinpath(*parts[:depth])
                wanted = " ".join(f"+{c}" for c in ("cpu", "memory", "pids")
                                  if c in _read(parent / "cgroup.controllers").split())
                if wanted:
                    with contextlib.suppress(OSError):
                        (parent / "cgroup.subtree_control").write_text(wanted)
                parent.joinpath(parts[depth]).mkdir(exist_ok=True)
            return
        for name in ("memory", "cpu", "cpuacct", "pids"):
            d = self.controller_dir(name)
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)

    def set_limits(self, resources: LinuxResources) -> None:
        files: dict[str, str] = {}
        if self.layout.version == 2:
            if resources.memory_limit_bytes:
                files["memory.max"] = str(resources.memory_limit_bytes)
                files["memory.swap.max"] = "0"
            if resources.cpu_quota:
                files["cpu.max"] = f"{resources.cpu_quota} {resources.cpu_period or 100000}"
            if resources.cpu_shares:
                files["cpu.weight"] = str(cpu_weight(resources.cpu_shares))
            if resources.pids_limit:
                files["pids.max"] = str(resources.pids_limit)
            for name, value in files.items():
                target = self._dir(self.layout.controllers[""]) / name
                if target.exists():
                    target.write_text(value)
            return
        writes: list[tuple[str, str, str]] = []
        if resources.memory_limit_bytes:
            writes.append(("memory", "memory.limit_in_bytes", str(resources.memory_limit_bytes)))
        if resources.cpu_quota:
            writes.append(("cpu", "cpu.cfs_period_us", str(resources.cpu_period or 100000)))
            writes.append(("cpu", "cpu.cfs_quota_us", str(resources.cpu_quota)))
        if resources.cpu_shares:
            writes.append(("cpu", "cpu.shares", str(resources.cpu_shares)))
        if resources.pids_limit:
            writes.append(("pids", "pids.max", str(resources.pids_limit)))
        for controller, name, value in writes:
            d = self.controller_dir(controller)
            if d is not None:
                (d / name).write_text(value)

    def add(self, pid: int) -> None:
        for d in self.dirs():
            (d / "cgroup.procs").write_text(str(pid))

    def swap_limit_supported(self) -> bool:
        """Whether a memory+swap limit can be set (v1 swap accounting; v2 ``memory.swap.max``)."""
        mount = self.layout.controller("memory")
        if mount is None:
            return False
        return self.layout.version == 2 or (mount / "memory.memsw.limit_in_bytes").exists()

    # -- reading ------------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """Every process in this cgroup and its children."""
        found: set[int] = set()
        base = self.controller_dir("pids") or self.controller_dir("memory")
        if base is None or not base.is_dir():
            dirs = self.dirs()
            if not dirs:
                return []
            base = dirs[0]
        for root, _subdirs, _files in os.walk(base):
            found.update(int(p) for p in _read(Path(root) / "cgroup.procs").split())
        return sorted(found)

    def oom_files(self) -> list[str]:
        """The files whose ``oom_kill`` counter tells whether the kernel OOM-killed a task in this cgroup."""
        d = self.controller_dir("memory")
        if d is None:
            return []
        return [str(d / ("memory.events" if self.layout.version == 2 else "memory.oom_control"))]

    def oom_kills(self) -> int:
        return oom_kill_count(self.oom_files())

    def stats(self) -> CgroupStats:
        memory = self.controller_dir("memory")
        if memory is None:
            return CgroupStats()
        if self.layout.version == 2:
            usage = _int(memory / "memory.current")
            inactive = _keyed(memory / "memory.stat").get("inactive_file", 0)
            cpu = _keyed(memory / "cpu.stat").get("usage_usec", 0) * 1000
            pids = _int(memory / "pids.current")
        else:
            usage = _int(memory / "memory.usage_in_bytes")
            inactive = _keyed(memory / "memory.stat").get("total_inactive_file", 0)
            cpuacct = self.controller_dir("cpuacct")
            cpu = _int(cpuacct / "cpuacct.usage") if cpuacct is not None else 0
            pids_dir = self.controller_dir("pids")
            pids = _int(pids_dir / "pids.current") if pids_dir is not None else 0
        return CgroupStats(usage, max(usage - inactive, 0), cpu, pids, self.oom_kills())

    # -- teardown -----------------------------------------------------------------------------------------
    def kill_all(self, attempts: int = 50) -> bool:
        """SIGKILL every task in the cgroup (v2: ``cgroup.kill``); True once it is empty."""
        if self.layout.version == 2:
            kill = self._dir(self.layout.controllers[""]) / "cgroup.kill"
            if kill.exists():
                with contextlib.suppress(OSError):
                    kill.write_text("1")
        for _ in range(attempts):
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        return not self.pids()

    def destroy(self, attempts: int = 50) -> bool:
        """Remove this cgroup and its children from every hierarchy (killing nothing); True when all are gone.
        Directories still holding tasks (EBUSY) are retried briefly, then left."""
        for _ in range(attempts):
            busy = False
            for d in self.dirs():
                for root, _subdirs, _files in sorted(os.walk(d), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(root)
                    except FileNotFoundError:
                        pass
                    except OSError:
                        busy = True
            if not busy:
                return True
            time.sleep(0.01)
        return not self.dirs()
