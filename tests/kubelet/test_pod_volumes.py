"""Pod volumes on disk: emptyDir, hostPath, configMap/secret files (items, modes, atomic updates), cleanup."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.volumes import VolumeManager, VolumeMountFailure, write_atomic

JSON = dict[str, Any]


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[VolumeManager]:
    async with InProcessCluster() as cluster:
        await cluster.client.create(cluster.resource("", "v1", "configmaps"), "default",
                                    {"metadata": {"name": "cm"}, "data": {"k": "v", "other": "o"}})
        await cluster.client.create(cluster.resource("", "v1", "secrets"), "default",
                                    {"metadata": {"name": "sec"}, "data": {"pw": base64.b64encode(b"pw!").decode()}})
        yield VolumeManager(cluster.client, tmp_path / "pods")


def _pod(volumes: list[JSON]) -> JSON:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "spec": {"volumes": volumes}}


async def test_configmap_and_secret_files_with_items_and_modes(manager: VolumeManager, tmp_path: Path) -> None:
    pod = _pod([{"name": "c", "configMap": {"name": "cm", "items": [{"key": "k", "path": "sub/file", "mode": 0o600}]}},
                {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                {"name": "e", "emptyDir": {}},
                {"name": "h", "hostPath": {"path": str(tmp_path / "host"), "type": "DirectoryOrCreate"}}])
    spec = {"volumeMounts": [{"name": "c", "mountPath": "/config"}, {"name": "s", "mountPath": "/secret"},
                             {"name": "e", "mountPath": "/scratch"}, {"name": "e", "mountPath": "/part",
                                                                      "subPath": "a/b"},
                             {"name": "h", "mountPath": "/host", "readOnly": True}]}
    mounts = await manager.mounts(pod, spec)
    by_path = {m.container_path: m for m in mounts}
    config = Path(by_path["/config"].host_path)
    assert (config / "sub" / "file").read_text() == "v" and not (config / "other").exists()
    assert (config / "sub" / "file").stat().st_mode & 0o777 == 0o600
    assert (Path(by_path["/secret"].host_path) / "pw").read_bytes() == b"pw!"
    assert (Path(by_path["/secret"].host_path) / "pw").stat().st_mode & 0o777 == 0o400
    assert by_path["/config"].readonly and by_path["/secret"].readonly and by_path["/host"].readonly
    assert not by_path["/scratch"].readonly
    assert by_path["/part"].host_path == os.path.join(by_path["/scratch"].host_path, "a/b")
    assert Path(by_path["/part"].host_path).is_dir() and (tmp_path / "host").is_dir()
    await manager.cleanup("u1")
    assert not manager.pod_dir("u1").exists()


async def test_missing_sources_fail_unless_optional(manager: VolumeManager) -> None:
    spec = {"volumeMounts": [{"name": "c", "mountPath": "/config"}]}
    with pytest.raises(VolumeMountFailure) as caught:
        await manager.mounts(_pod([{"name": "c", "configMap": {"name": "nope"}}]), spec)
    assert str(caught.value) == 'MountVolume.SetUp failed for volume "c" : configmap "nope" not found'
    assert caught.value.reason == "ContainerCreating"
    with pytest.raises(VolumeMountFailure, match="configmap references non-existent config key: zz"):
        await manager.mounts(_pod([{"name": "c", "configMap": {"name": "cm", "items": [{"key": "zz",
                                                                                         "path": "z"}]}}]), spec)
    mounts = await manager.mounts(_pod([{"name": "c", "secret": {"secretName": "nope", "optional": True}}]), spec)
    assert [p.name for p in Path(mounts[0].host_path).iterdir() if not p.name.startswith("..")] == []


def test_atomic_rewrite_replaces_the_whole_set(tmp_path: Path) -> None:
    write_atomic(tmp_path, {"a": (b"1", 0o644), "b": (b"2", 0o644)})
    write_atomic(tmp_path, {"a": (b"3", 0o644)})
    assert (tmp_path / "a").read_bytes() == b"3" and not (tmp_path / "b").exists()
    versions = [p for p in tmp_path.iterdir() if p.name.startswith("..") and not p.is_symlink()]
    assert len(versions) == 1 and (tmp_path / "..data").resolve() == versions[0].resolve()


async def test_a_memory_empty_dir_is_a_tmpfs_gone_with_the_pod(manager: VolumeManager) -> None:
    assert os.geteuid() == 0, "mounting a tmpfs needs root (CI runs the kubelet tests as root)"
    pod = _pod([{"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}])
    try:
        mounts = await manager.mounts(pod, {"volumeMounts": [{"name": "m", "mountPath": "/m"}]})
        path = mounts[0].host_path
        line = next(ln for ln in Path("/proc/mounts").read_text().splitlines() if ln.split()[1] == path)
        assert line.split()[2] == "tmpfs" and "size=1024k" in line
    finally:
        await manager.cleanup("u1")  # unmounts even when an assertion failed
    assert path not in Path("/proc/mounts").read_text() and not manager.pod_dir("u1").exists()
