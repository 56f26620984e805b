"""The OCI runtime spec (``config.json``) of a native container, built as plain data.

``build_config`` turns what the runtime knows about a container (its process, root filesystem, mounts, the Pod
sandbox's namespaces, cgroup and resources) into the document runc reads. It does no I/O, so every choice is
visible in one place and testable without root:

* Namespaces: the container joins its Pod's network namespace (the path the network layer made) and the Pod's
  persistent IPC and UTS namespaces (nsfs files in the sandbox directory); it gets a mount and PID namespace
  of its own. ``hostNetwork`` Pods share the host's network and UTS namespaces.
* Mounts: proc, a tmpfs ``/dev`` with devpts, the Pod's shared ``/dev/shm``, mqueue, read-only sysfs and
  cgroup, the Pod's ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf``, then the volumes the kubelet
  passes (bind mounts; a volume at one of the Pod files' paths replaces it).
* Security: containerd's default capability set, its masked and read-only ``/proc`` paths, all devices denied
  except runc's defaults; no seccomp profile (Kubernetes' default is Unconfined).
* Resources: cpu shares/quota/period, memory limit (swap pinned to the same value where the kernel accounts
  swap), pids limit, under ``cgroups_path``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .interface import ContainerConfig, LinuxResources, Mount, RuntimeFailure
from .rootfs import DEFAULT_PATH, RunConfig

OCI_VERSION = "1.0.2-dev"
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
PROPAGATION = {"private": "rprivate", "rslave": "rslave", "rshared": "rshared"}


@dataclass
class BundleSpec:
    """Everything ``build_config`` needs, resolved by the runtime."""

    args: list[str]
    env: list[str]
    rootfs: str
    cgroups_path: str
    ipc_ns: str
    net_ns: str | None = None  # None: the host's network (and UTS) namespace
    uts_ns: str | None = None
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    tty: bool = False
    readonly_rootfs: bool = False
    pod_files: dict[str, str] = field(default_factory=dict)  # container path -> host file (/etc/hosts ...)
    shm: str = ""  # the Pod's shared /dev/shm directory ("" : a tmpfs of the container's own)
    volumes: list[Mount] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)  # container paths that get an empty tmpfs (host-image masks)
    resources: LinuxResources | None = None
    swap_accounting: bool = False
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodParts:
    """What a container takes from its Pod sandbox."""

    dir: Path  # holds ns/ipc, ns/uts, shm, hosts, hostname, resolv.conf
    netns: str
    host_network: bool
    hostname: str


def container_spec(config: ContainerConfig, image: RunConfig, *, rootfs: str, cgroups_path: str, pod: PodParts,
                   user: tuple[int, int], masks: list[str], swap_accounting: bool) -> BundleSpec:
    """The bundle of a container of ``pod``: its process from the container config over the image's, the Pod's
    namespaces and files, ``masks`` (paths that get an empty tmpfs, parents first so none hides another)."""
    d = pod.dir
    files = {"/etc/hosts": str(d / "hosts"), "/etc/hostname": str(d / "hostname"),
             "/etc/resolv.conf": str(d / "resolv.conf")}
    return BundleSpec(
        process_args(config, image), process_env(config, image, pod.hostname), rootfs, cgroups_path,
        str(d / "ns/ipc"), net_ns=None if pod.host_network else pod.netns,
        uts_ns=None if pod.host_network else str(d / "ns/uts"), cwd=config.working_dir or image.working_dir or "/",
        uid=user[0], gid=user[1], tty=config.tty, pod_files=files, shm=str(d / "shm"), volumes=list(config.mounts),
        tmpfs=sorted(set(masks), key=lambda p: (p.count("/"), p)), resources=config.resources,
        swap_accounting=swap_accounting, annotations=dict(config.annotations))


def process_args(config: ContainerConfig, image: RunConfig) -> list[str]:
    """The container's argv as Kubernetes defines it: ``command`` replaces the image's entrypoint, ``args`` its
    cmd; an image's cmd is used only when neither is given."""
    command, args = list(config.command), list(config.args)
    if not command and not args:
        args = list(image.cmd)
    if not command:
        command = list(image.entrypoint)
    argv = command + args
    if not argv:
        raise RuntimeFailure(f'no command specified for container "{config.metadata.name}" '
                             f"(the image {config.image} has no entrypoint or cmd)")
    return argv


def process_env(config: ContainerConfig, image: RunConfig, hostname: str) -> list[str]:
    """Image env, then PATH (if the image sets none) and HOSTNAME, then the container's own (last one wins)."""
    merged: dict[str, str] = {}
    for item in image.env:
        name, _, value = item.partition("=")
        merged[name] = value
    merged.setdefault("PATH", DEFAULT_PATH)
    if hostname:
        merged["HOSTNAME"] = hostname
    for name, value in config.envs:
        merged[name] = value
    return [f"{k}={v}" for k, v in merged.items()]


def _mounts(spec: BundleSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    if spec.shm:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": spec.shm,
                       "options": ["rbind", "rprivate", "rw"]})
    else:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    for path in spec.tmpfs:
        mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777"]})
    taken = {m.container_path.rstrip("/") for m in spec.volumes}
    for path, source in spec.pod_files.items():
        if path not in taken:
            mounts.append({"destination": path, "type": "bind", "source": source,
                           "options": ["rbind", "rprivate", "rw"]})
    for volume in spec.volumes:
        mounts.append({"destination": volume.container_path, "type": "bind", "source": volume.host_path,
                       "options": ["rbind", PROPAGATION.get(volume.propagation, "rprivate"),
                                   "ro" if volume.readonly else "rw"]})
    return mounts


def _resources(spec: BundleSpec) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    r = spec.resources
    if r is None:
        return resources
    if r.memory_limit_bytes:
        resources["memory"] = {"limit": r.memory_limit_bytes}
        if spec.swap_accounting:
            resources["memory"]["swap"] = r.memory_limit_bytes
    cpu: dict[str, int] = {}
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
        cpu["period"] = r.cpu_period or 100000
    if cpu:
        resources["cpu"] = cpu
    if r.pids_limit:
        resources["pids"] = {"limit": r.pids_limit}
    return resources


def _namespaces(spec: BundleSpec) -> list[dict[str, str]]:
    namespaces = [{"type": "pid"}, {"type": "mount"}, {"type": "ipc", "path": spec.ipc_ns}]
    if spec.net_ns is not None:
        namespaces.append({"type": "network", "path": spec.net_ns})
        if spec.uts_ns:
            namespaces.append({"type": "uts", "path": spec.uts_ns})
    return namespaces


def build_config(spec: BundleSpec) -> dict[str, Any]:
    """The ``config.json`` document for runc."""
    caps = list(DEFAULT_CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": spec.tty,
            "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": [spec.gid]},
            "args": spec.args,
            "env": spec.env,
            "cwd": spec.cwd or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "mounts": _mounts(spec),
        "annotations": dict(spec.annotations),
        "linux": {
            "namespaces": _namespaces(spec),
            "cgroupsPath": spec.cgroups_path,
            "resources": _resources(spec),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
