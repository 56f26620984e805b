"""Pod sandboxes of the native runtime: the network contract, the Pod's files and its shared namespaces.

A native sandbox has no "pause" process. What the containers of a Pod share lives in the sandbox directory:

* the network namespace, made and wired by a ``PodNetwork`` (CNI in the real agent; ``NamespaceOnlyNetwork``,
  a namespace with only ``lo`` up, in tests), joined by path;
* persistent IPC and UTS namespaces, kept alive by nsfs bind mounts on ``ns/ipc`` and ``ns/uts``, made
  in-process by a short-lived thread that unshares them and sets the Pod's hostname in the UTS namespace
  (``netns.in_own_namespaces``: what util-linux ``unshare --ipc=F --uts=F hostname H`` does, without a fork);
* a tmpfs mounted on ``shm`` that every container sees as ``/dev/shm``;
* ``hosts``, ``hostname`` and ``resolv.conf``, bind-mounted over the container's own files.

``hostNetwork`` Pods use the host's network and UTS namespaces and the host's ``/etc/hosts``. Everything here
is undone by ``remove_pod_files``, which tolerates partial setups (a crash half-way, a second call).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from pathlib import Path
from typing import Protocol

from nanokube.kubelet.network.base import PodNetworkInfo
from nanokube.kubelet.network.netns import CLONE_NEWIPC, CLONE_NEWUTS, bind_namespace, in_own_namespaces

from .interface import PodSandboxConfig, SandboxFailure
from .rootfs import mount, unmount

SHM_SIZE = "64m"
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
NETNS_DIR = Path("/run/netns")


class PodNetwork(Protocol):
    """Gives a Pod its network (what ``nanokube.kubelet.network.PodNetwork`` does with CNI): a namespace with
    interfaces, an IP from the node's pod CIDR, routes. Keyed by Pod uid; both calls are idempotent."""

    async def setup(self, pod_uid: str, pod_namespace: str, pod_name: str) -> PodNetworkInfo: ...

    async def teardown(self, pod_uid: str) -> None: ...


async def run(*argv: str) -> str:
    """Run a command; its stdout, or SandboxFailure with its stderr."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise SandboxFailure(f"{' '.join(argv[:3])}: {err.decode(errors='replace').strip()}")
    return out.decode()


class NamespaceOnlyNetwork:
    """A ``PodNetwork`` without interfaces: each Pod gets a namespace ``<prefix><uid>`` with only ``lo`` up
    and no IP (tests: a Pod's containers share localhost, Pods are isolated from each other)."""

    def __init__(self, prefix: str = "nk-lo-") -> None:
        self.prefix = prefix

    async def setup(self, pod_uid: str, pod_namespace: str, pod_name: str) -> PodNetworkInfo:
        name = f"{self.prefix}{pod_uid}"
        if not (NETNS_DIR / name).exists():
            await run("ip", "netns", "add", name)
        try:
            await run("ip", "-n", name, "link", "set", "lo", "up")
        except SandboxFailure:
            await self.teardown(pod_uid)
            raise
        return PodNetworkInfo(pod_uid, pod_namespace, pod_name, str(NETNS_DIR / name), "", "")

    async def teardown(self, pod_uid: str) -> None:
        if (NETNS_DIR / f"{self.prefix}{pod_uid}").exists():
            await run("ip", "netns", "delete", f"{self.prefix}{pod_uid}")


# -- the Pod's files and namespaces -----------------------------------------------------------------------

def hosts_file(config: PodSandboxConfig, ip: str) -> str:
    """The kubelet's managed /etc/hosts for a Pod with its own network."""
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if ip:
        lines.append(f"{ip}\t{config.hostname or config.metadata.name}")
    return "\n".join(lines) + "\n"


SYSTEMD_RESOLV = Path("/run/systemd/resolve/resolv.conf")


def resolv_conf(config: PodSandboxConfig, host_resolv: Path, upstream: Path = SYSTEMD_RESOLV) -> str:
    """The Pod's resolv.conf: its DNS config when given (ClusterFirst and friends), else the host's. A host
    resolver on loopback (systemd-resolved's 127.0.0.53) is useless in a Pod's own network namespace, so
    then the upstream servers systemd-resolved lists are used, as the kubelet does."""
    dns = config.dns
    if dns is None or not (dns.servers or dns.searches or dns.options):
        try:
            text = host_resolv.read_text()
        except OSError:
            return ""
        loopback = any(line.split()[1:2] and line.split()[1].startswith("127.")
                       for line in text.splitlines() if line.startswith("nameserver"))
        if loopback and not config.host_network and upstream.exists():
            return upstream.read_text()
        return text
    lines = [f"nameserver {s}" for s in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def pod_hostname(config: PodSandboxConfig) -> str:
    """The Pod's hostname: its own, or the node's for ``hostNetwork`` Pods."""
    if config.host_network:
        return os.uname().nodename
    return (config.hostname or config.metadata.name)[:63]


async def make_pod_files(directory: Path, config: PodSandboxConfig, ip: str, *,
                         host_hosts: Path = Path("/etc/hosts"),
                         host_resolv: Path = Path("/etc/resolv.conf")) -> None:
    """Write hosts/hostname/resolv.conf, create the IPC (and, with its own network, UTS) namespaces and the
    shared /dev/shm tmpfs in ``directory``. All of it happens on the one short-lived thread that owns the
    new namespaces, so the event loop never waits on the disk."""
    hostname = None if config.host_network else pod_hostname(config)

    def make() -> None:
        _write_files(directory, config, ip, host_hosts, host_resolv)
        _keep_namespaces(directory / "ns", hostname)
        shm = directory / "shm"
        shm.mkdir(exist_ok=True)
        mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={SHM_SIZE}")

    try:
        await in_own_namespaces(CLONE_NEWIPC | (0 if config.host_network else CLONE_NEWUTS), make)
    except OSError as err:
        raise SandboxFailure(f"making the pod's files and namespaces: {err}") from err


def _write_files(directory: Path, config: PodSandboxConfig, ip: str, host_hosts: Path, host_resolv: Path) -> None:
    if config.host_network:
        hosts = host_hosts.read_text() if host_hosts.exists() else hosts_file(config, "")
    else:
        hosts = hosts_file(config, ip)
    (directory / "hosts").write_text(hosts)
    (directory / "hostname").write_text(pod_hostname(config) + "\n")
    (directory / "resolv.conf").write_text(resolv_conf(config, host_resolv))
    ns = directory / "ns"
    ns.mkdir(exist_ok=True)
    (ns / "ipc").touch()
    if not config.host_network:
        (ns / "uts").touch()


def _keep_namespaces(ns: Path, hostname: str | None) -> None:
    """On the unshared thread: set the hostname (own UTS namespace only) and bind-mount the namespaces."""
    if hostname is not None:
        socket.sethostname(hostname)
        bind_namespace("uts", str(ns / "uts"))
    bind_namespace("ipc", str(ns / "ipc"))


def remove_pod_files(directory: Path) -> None:
    """Unmount the namespaces and the shm tmpfs, then delete the directory."""
    for path in (directory / "ns/ipc", directory / "ns/uts", directory / "shm"):
        with contextlib.suppress(FileNotFoundError):
            unmount(path)
    shutil.rmtree(directory, ignore_errors=True)
