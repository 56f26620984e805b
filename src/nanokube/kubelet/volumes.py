"""A Pod's simplest volumes on a real node: emptyDir, hostPath, configMap and secret, as bind mounts.

``VolumeManager.mounts`` prepares what a container's ``volumeMounts`` name, under a per-Pod directory
(``<root>/<pod uid>/volumes/<name>``, the kubelet's ``/var/lib/kubelet/pods/<uid>/volumes``), and returns the
runtime ``Mount`` list. It runs before every container start, so it is idempotent: an emptyDir lives as long
as the Pod (``cleanup`` removes it once the Pod is gone), ConfigMap and Secret contents are rewritten with the
kubelet's atomic layout (``..data`` points at a versioned directory; each top-level name is a link through
``..data``), so a running container sees a consistent set of files. ``medium: Memory`` mounts a tmpfs.

Simplifications: a missing ConfigMap or Secret fails container creation with ``CreateContainerConfigError``
(the kubelet keeps the Pod in ContainerCreating with a FailedMount event); ConfigMap and Secret volumes are
written at container start, not refreshed while it runs; subPath works for paths without ``..``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath
from typing import Any

from nanokube.api.errors import NotFound
from nanokube.api.quantity import value
from nanokube.client.interface import Client

from .podenv import ContainerConfigFailure
from .runtime.interface import Mount

JSON = dict[str, Any]
Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
DATA_LINK = "..data"


class VolumeManager:
    def __init__(self, client: Client, root: Path) -> None:
        self.client = client
        self.root = root

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def mounts(self, pod: JSON, spec: JSON) -> list[Mount]:
        """Prepare the volumes ``spec`` mounts and return them; ContainerConfigFailure when one cannot be made."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        result: list[Mount] = []
        prepared: dict[str, tuple[Path, bool]] = {}
        for vm in spec.get("volumeMounts") or []:
            name = vm["name"]
            if name not in prepared:
                if name not in volumes:
                    raise ContainerConfigFailure(f'unable to find volume "{name}"')
                prepared[name] = await self._prepare(pod, volumes[name])
            source, always_ro = prepared[name]
            sub = vm.get("subPath") or ""
            if sub:
                if PurePosixPath(sub).is_absolute() or ".." in PurePosixPath(sub).parts:
                    raise ContainerConfigFailure(f'invalid subPath "{sub}"')
                source = source / sub
                if not source.exists():
                    await asyncio.to_thread(source.mkdir, parents=True, exist_ok=True)
            result.append(Mount(vm["mountPath"], str(source), readonly=always_ro or bool(vm.get("readOnly"))))
        return result

    async def cleanup(self, uid: str) -> None:
        """The Pod is gone: unmount its memory volumes and remove its directory."""
        await asyncio.to_thread(_remove_pod_dir, self.pod_dir(uid))

    # -- one volume -----------------------------------------------------------------------------------------
    async def _prepare(self, pod: JSON, volume: JSON) -> tuple[Path, bool]:
        """(host path, mounted read-only whatever the mount says)."""
        target = self.pod_dir(pod["metadata"]["uid"]) / "volumes" / volume["name"]
        namespace = pod["metadata"].get("namespace", "")
        if "emptyDir" in volume:
            await asyncio.to_thread(_empty_dir, target, volume["emptyDir"] or {})
            return target, False
        if "hostPath" in volume:
            return await asyncio.to_thread(_host_path, volume["hostPath"]), False
        if "configMap" in volume:
            files = await self._object_files("configmaps", namespace, volume["configMap"])
        elif "secret" in volume:
            source = dict(volume["secret"])
            source["name"] = source.get("secretName", "")
            files = await self._object_files("secrets", namespace, source)
        else:
            kind = next((k for k in volume if k != "name"), "unknown")
            raise ContainerConfigFailure(f'volume "{volume["name"]}": {kind} volumes are not supported on this node')
        await asyncio.to_thread(write_atomic, target, files)
        return target, True

    async def _object_files(self, plural: str, namespace: str, source: JSON) -> Files:
        resource = self.client.registry.get("", "v1", plural)
        assert resource is not None
        name, optional = source.get("name", ""), bool(source.get("optional"))
        try:
            obj = await self.client.get(resource, namespace, name)
        except NotFound:
            if optional:
                return {}
            raise ContainerConfigFailure(f'{plural[:-1]} "{name}" not found') from None
        data = decoded_data(obj, secret=plural == "secrets")
        default_mode = int(source.get("defaultMode", 0o644))
        items = source.get("items")
        if not items:
            return {key: (content, default_mode) for key, content in data.items()}
        files: Files = {}
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise ContainerConfigFailure(f"{plural[:-1]} references non-existent config key: {item['key']}")
            files[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
        return files


def decoded_data(obj: JSON, *, secret: bool) -> dict[str, bytes]:
    """A ConfigMap's data and binaryData, or a Secret's data, as bytes by key."""
    if secret:
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    found = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    found.update((k, str(v).encode()) for k, v in (obj.get("data") or {}).items())
    return found


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


def _host_path(source: JSON) -> Path:
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
        raise ContainerConfigFailure(f"hostPath type check failed: {path} is not a {kind}")
    return path


def write_atomic(target: Path, files: Files) -> None:
    """The kubelet's atomic writer: files in a new versioned directory, ``..data`` switched to it in one
    rename, top-level names linked through ``..data``; older versions and stale links removed."""
    target.mkdir(parents=True, exist_ok=True)
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
    volumes = pod_dir / "volumes"
    if volumes.is_dir():
        for entry in volumes.iterdir():
            if os.path.ismount(entry):
                subprocess.run(["umount", "-l", str(entry)], capture_output=True)
    shutil.rmtree(pod_dir, ignore_errors=True)
