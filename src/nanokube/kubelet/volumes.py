"""A Pod's volumes on a real node, as bind mounts: emptyDir, hostPath, configMap, secret, downwardAPI,
projected and persistentVolumeClaim, plus the kubelet-managed ``/etc/hosts``.

``VolumeManager.mounts`` sets up every volume of the Pod (as the kubelet does before any container starts)
under a per-Pod directory (``<root>/<pod uid>/volumes/<name>``, the kubelet's
``/var/lib/kubelet/pods/<uid>/volumes``) and returns the runtime ``Mount`` list for one container's
``volumeMounts``. It runs before every container start, so it is idempotent: an emptyDir lives as long as the
Pod (``cleanup`` removes it once the Pod is gone); configMap, secret, downwardAPI and projected contents
are rewritten with the kubelet's atomic layout (``..data`` points at a versioned directory; each top-level
name is a link through ``..data``), so a running container sees a consistent set of files. ``medium:
Memory`` mounts a tmpfs. A claim mounts the host directory of its bound hostPath/local volume
(``volumesources.py``); its ``readOnly`` makes every mount of it read-only.

A source that is missing (ConfigMap, Secret, key, claim not found or not bound) raises
``VolumeMountFailure``: the Pod stays in ContainerCreating with a FailedMount event and is tried again; a bad
``subPath`` is a ``ContainerConfigFailure`` (CreateContainerConfigError). Contents are written at container
start and refreshed (``refresh``) whenever the Pod is synced again, e.g. when its labels change; subPath works
for paths without ``..``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nanokube.api.quantity import value
from nanokube.client.interface import Client

from .podenv import ContainerConfigFailure
from .runtime.interface import DNSConfig, Mount, RuntimeFailure
from .volumesources import Files, VolumeMountFailure, VolumeSources, decoded_data, setup_failed

if TYPE_CHECKING:
    from .podfiles import PodFiles

JSON = dict[str, Any]
DATA_LINK = "..data"
FILE_KINDS = ("configMap", "secret", "downwardAPI", "projected")
__all__ = ["VolumeManager", "VolumeMountFailure", "decoded_data", "write_atomic"]


class VolumeManager:
    def __init__(self, client: Client, root: Path, *, node_allocatable: Mapping[str, str] | None = None,
                 pod_files: PodFiles | None = None) -> None:
        self.client = client
        self.root = root
        self.sources = VolumeSources(client, node_allocatable=node_allocatable)
        self.pod_files = pod_files  # given: containers get the kubelet-managed /etc/hosts

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    def dns_config(self, pod: JSON) -> DNSConfig | None:
        """The Pod's resolver settings for its sandbox (``PodFiles.dns_config``); None without pod files."""
        return self.pod_files.dns_config(pod) if self.pod_files is not None else None

    async def mounts(self, pod: JSON, spec: JSON, pod_ips: Sequence[str] = ()) -> list[Mount]:
        """Set up the Pod's volumes and return the mounts of container ``spec``; ``VolumeMountFailure`` while a
        source is missing, ``ContainerConfigFailure`` for a mount that can never work."""
        prepared: dict[str, tuple[Path, bool]] = {}
        for volume in pod["spec"].get("volumes") or []:
            prepared[volume["name"]] = await self._prepare(pod, volume)
        result: list[Mount] = []
        for vm in spec.get("volumeMounts") or []:
            name = vm["name"]
            if name not in prepared:
                raise ContainerConfigFailure(f'unable to find volume "{name}"')
            source, always_ro = prepared[name]
            sub = vm.get("subPath") or ""
            if sub:
                if PurePosixPath(sub).is_absolute() or ".." in PurePosixPath(sub).parts:
                    raise ContainerConfigFailure(f'invalid subPath "{sub}"')
                source = source / sub
                if not source.exists():
                    await asyncio.to_thread(source.mkdir, parents=True, exist_ok=True)
            result.append(Mount(vm["mountPath"], str(source), readonly=always_ro or bool(vm.get("readOnly"))))
        if self.pod_files is not None and not any(m.container_path == "/etc/hosts" for m in result):
            hosts = await self.pod_files.hosts_mount(pod, pod_ips, self.pod_dir(pod["metadata"]["uid"]))
            if hosts is not None:
                result.append(hosts)
        return result

    async def refresh(self, pod: JSON) -> None:
        """Bring the file-backed volumes already set up up to date (labels, annotations, ConfigMap and Secret
        data), as the kubelet's periodic remount does; a source that is now missing keeps its old files."""
        for volume in pod["spec"].get("volumes") or []:
            if not any(kind in volume for kind in FILE_KINDS):
                continue
            target = self.pod_dir(pod["metadata"]["uid"]) / "volumes" / volume["name"]
            if not (target / DATA_LINK).exists():
                continue
            try:
                files = await self._files(pod, volume)
            except RuntimeFailure:
                continue
            await asyncio.to_thread(write_atomic, target, files)

    async def cleanup(self, uid: str) -> None:
        """The Pod is gone: unmount its memory volumes and remove its directory."""
        self.sources.tokens.forget(uid)
        await asyncio.to_thread(_remove_pod_dir, self.pod_dir(uid))

    # -- one volume -----------------------------------------------------------------------------------------
    async def _prepare(self, pod: JSON, volume: JSON) -> tuple[Path, bool]:
        """(host path, mounted read-only whatever the mount says)."""
        name = volume["name"]
        target = self.pod_dir(pod["metadata"]["uid"]) / "volumes" / name
        namespace = pod["metadata"].get("namespace", "")
        if "emptyDir" in volume:
            await asyncio.to_thread(_empty_dir, target, volume["emptyDir"] or {})
            return target, False
        if "hostPath" in volume:
            return await asyncio.to_thread(_host_path, name, volume["hostPath"]), False
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"] or {}
            path = await self.sources.claim_path(name, namespace, claim)
            return path, bool(claim.get("readOnly"))
        files = await self._files(pod, volume)
        await asyncio.to_thread(write_atomic, target, files)
        return target, True

    async def _files(self, pod: JSON, volume: JSON) -> Files:
        name, namespace = volume["name"], pod["metadata"].get("namespace", "")
        if "configMap" in volume:
            return await self.sources.object_files(name, namespace, volume["configMap"] or {}, secret=False)
        if "secret" in volume:
            source = dict(volume["secret"] or {})
            source["name"] = source.get("secretName", "")
            return await self.sources.object_files(name, namespace, source, secret=True)
        if "downwardAPI" in volume:
            return self.sources.downward_files(name, pod, volume["downwardAPI"] or {})
        if "projected" in volume:
            return await self.sources.projected_files(name, pod, volume["projected"] or {})
        kind = next((k for k in volume if k != "name"), "unknown")
        raise setup_failed(name, f"{kind} volumes are not supported on this node")


def _empty_dir(target: Path, source: JSON) -> None:
    if target.is_dir():
        return
    target.mkdir(parents=True)
    os.chmod(target, 0o777)
    if source.get("medium") == "Memory":
        options = "mode=1777"
        if source.get("sizeLimit"):
            options += f",size={value(source['sizeLimit'])}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True,
                       capture_output=True)


def _host_path(volume: str, source: JSON) -> Path:
    path = Path(source["path"])
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(parents=True, mode=0o755)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
    checks = {"Directory": path.is_dir, "DirectoryOrCreate": path.is_dir, "File": path.is_file,
              "FileOrCreate": path.is_file, "Socket": path.is_socket, "CharDevice": path.is_char_device,
              "BlockDevice": path.is_block_device}
    if kind in checks and not checks[kind]():
        raise setup_failed(volume, f"hostPath type check failed: {path} is not a {kind}")
    return path


def current_files(target: Path) -> Files | None:
    """What ``..data`` holds now (None when nothing was written yet)."""
    data = target / DATA_LINK
    if not data.is_dir():
        return None
    found: Files = {}
    for directory, _, names in os.walk(data, followlinks=True):
        for name in names:
            path = Path(directory, name)
            found[str(path.relative_to(data))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return found


def write_atomic(target: Path, files: Files) -> None:
    """The kubelet's atomic writer: files in a new versioned directory, ``..data`` switched to it in one
    rename, top-level names linked through ``..data``; older versions and stale links removed. Nothing is
    written when the volume already holds exactly ``files``."""
    target.mkdir(parents=True, exist_ok=True)
    if current_files(target) == files:
        return
    version = target / f"..{time.time_ns()}"
    version.mkdir()
    for rel, (content, mode) in files.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    version.chmod(0o755)
    tmp = target / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(version.name, tmp)
    os.replace(tmp, target / DATA_LINK)
    tops = {rel.split("/", 1)[0] for rel in files}
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            if entry.name not in (DATA_LINK, version.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
        elif entry.name not in tops and entry.is_symlink():
            entry.unlink()
    for top in tops:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"{DATA_LINK}/{top}", link)


def _remove_pod_dir(pod_dir: Path) -> None:
    if not pod_dir.exists():
        return
    # Claims and hostPaths are bind-mounted straight from their host directories (nothing of them is here).
    volumes = pod_dir / "volumes"
    if volumes.is_dir():
        for entry in volumes.iterdir():
            if os.path.ismount(entry):
                subprocess.run(["umount", "-l", str(entry)], capture_output=True)
    shutil.rmtree(pod_dir, ignore_errors=True)
