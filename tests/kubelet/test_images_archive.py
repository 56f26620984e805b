"""``ImageStore.import_archive`` for OCI archives/layouts and docker-archives built offline from busybox-static,
and what the store does with the result: names, ids, rootfs layers a real overlay mount runs, removal and
garbage collection, corrupt archives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from images_helpers import (
    Built,
    build_image,
    busybox_entries,
    digest_of,
    index_of,
    overlay_mount,
    require_root,
    tar_directory,
    tar_entries,
    whiteout_entries,
    write_docker_archive,
    write_oci_layout,
)

from nanokube.kubelet.images.content import DigestMismatch
from nanokube.kubelet.images.manifest import ManifestError
from nanokube.kubelet.images.store import ImageInUse, ImageNotFound, ImageStore


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()


@pytest.fixture(scope="module")
def busybox() -> Built:
    return build_image([tar_entries(busybox_entries()), tar_entries(whiteout_entries())])


def _oci_archive(tmp_path: Path, entries: list[tuple[Built, str]], extra_index: bytes | None = None) -> Path:
    layout = tmp_path / "layout"
    write_oci_layout(layout, entries, extra_index)
    tar_directory(layout, tmp_path / "busybox.tar")
    shutil.rmtree(layout)
    return tmp_path / "busybox.tar"


async def test_oci_archive_imports_and_runs(tmp_path: Path, busybox: Built) -> None:
    store = ImageStore(tmp_path / "images")
    [image] = await store.import_archive(_oci_archive(tmp_path, [(busybox, "1.36")]))
    assert image.id == busybox.config_digest
    assert image.repo_tags == ("docker.io/library/busybox:1.36",)  # a bare tag takes the file's name
    assert image.repo_digests == ()
    assert image.image_ref == image.id
    assert image.manifest_digest == busybox.digest
    assert image.size == sum(len(b) for b in busybox.blobs.values())
    assert store.get("busybox:1.36") == store.get(image.id) == store.get(image.id[7:19]) == image
    cfg = store.config("busybox:1.36")
    assert cfg.cmd == ("/bin/sh",) and cfg.env == ("PATH=/bin:/sbin:/usr/bin:/usr/sbin",)
    layers = store.rootfs_layers("docker.io/library/busybox:1.36")
    assert len(layers) == 2 and all(p.is_dir() for p in layers)
    with overlay_mount(layers, tmp_path / "rootfs") as rootfs:
        run = subprocess.run(["chroot", str(rootfs), *cfg.argv(["/bin/sh", "-c"],
                              ["cat /var/www/index.html; ls /etc; ls /var/www"])],
                             capture_output=True, text=True, timeout=10)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["new", "index", "added", "added-link", "group", "passwd", "index.html"]
        with pytest.raises(ImageInUse):
            await store.remove("busybox:1.36")
    assert store.get("busybox:1.36") is not None


async def test_oci_layout_directory_with_a_multi_arch_index(tmp_path: Path, busybox: Built) -> None:
    arm = build_image([tar_entries(whiteout_entries())], arch="arm64")
    layout = tmp_path / "layout"
    write_oci_layout(layout, [(busybox, "docker.io/me/bb:named")], index_of([(arm, "arm64"), (busybox, "amd64")]))
    (layout / "blobs/sha256" / arm.digest[7:]).write_bytes(arm.manifest)
    store = ImageStore(tmp_path / "images")
    images = await store.import_archive(layout, name="multi-repo")
    assert len(images) == 2 and images[0] == images[1]  # the amd64 entry of the index is the same image
    assert images[1].id == busybox.config_digest
    assert images[1].repo_tags == ("docker.io/me/bb:named", "docker.io/library/multi-repo:multi")
    assert len(store.list()) == 1


async def test_docker_archive(tmp_path: Path, busybox: Built) -> None:
    path = tmp_path / "saved.tar"
    write_docker_archive(path, busybox, ["busybox:saved", "127.0.0.1:5000/bb:x"])
    store = ImageStore(tmp_path / "images")
    [image] = await store.import_archive(path)
    assert image.id == busybox.config_digest
    assert image.repo_tags == ("docker.io/library/busybox:saved", "127.0.0.1:5000/bb:x")
    assert [d.media_type for d in image.layers] == ["application/vnd.docker.image.rootfs.diff.tar"] * 2
    doc = json.loads(store.content.read_bytes(image.manifest_digest))
    assert doc["config"]["digest"] == image.id and len(doc["layers"]) == 2
    with overlay_mount(store.rootfs_layers("busybox:saved"), tmp_path / "rootfs") as rootfs:
        assert (rootfs / "var/www/index.html").read_text() == "new index\n"
        assert not (rootfs / "etc/motd").exists()


async def test_corrupt_blob_is_refused(tmp_path: Path, busybox: Built) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(layout, [(busybox, "1")])
    victim = layout / "blobs/sha256" / digest_of(busybox.layers[1])[7:]
    victim.write_bytes(busybox.layers[1][:-1] + bytes([busybox.layers[1][-1] ^ 1]))
    store = ImageStore(tmp_path / "images")
    with pytest.raises(DigestMismatch):
        await store.import_archive(layout)
    assert store.list() == []


async def test_wrong_diff_id_in_config_is_refused(tmp_path: Path, busybox: Built) -> None:
    bad = build_image([tar_entries(busybox_entries())])
    cfg = json.loads(bad.config)
    cfg["rootfs"]["diff_ids"] = ["sha256:" + "1" * 64]
    bad = Built(bad.manifest, bad.manifest_type, json.dumps(cfg).encode(), bad.layers)
    path = tmp_path / "bad.tar"
    write_docker_archive(path, bad, ["bad:1"])
    store = ImageStore(tmp_path / "images")
    with pytest.raises(DigestMismatch, match="diff id"):
        await store.import_archive(path)
    assert store.list() == [] and store.snapshots.chain_ids() == []


async def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"junk")
    (tmp_path / "empty").mkdir()
    store = ImageStore(tmp_path / "images")
    for path in (tmp_path / "junk", tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(ManifestError):
            await store.import_archive(path)


async def test_remove_untags_then_deletes_and_collects(tmp_path: Path, busybox: Built) -> None:
    store = ImageStore(tmp_path / "images")
    path = tmp_path / "saved.tar"
    write_docker_archive(path, busybox, ["busybox:a", "busybox:b"])
    [image] = await store.import_archive(path)
    small = build_image([tar_entries(whiteout_entries())])
    write_docker_archive(path, small, ["small:1"])
    await store.import_archive(path)
    assert await store.remove("busybox:a") == ["Untagged: docker.io/library/busybox:a"]
    assert store.get(image.id) is not None and store.rootfs_layers(image.id)
    assert await store.remove("busybox:b") == ["Untagged: docker.io/library/busybox:b", f"Deleted: {image.id}"]
    assert store.get(image.id) is None
    remaining = store.require("small:1")
    assert set(store.content.digests()) == remaining.blobs()
    assert set(store.snapshots.chain_ids()) == set(remaining.chain_ids)
    with pytest.raises(ImageNotFound):
        await store.remove("busybox:b")
    assert await store.remove(remaining.id) == ["Untagged: docker.io/library/small:1", f"Deleted: {remaining.id}"]
    assert list(store.content.digests()) == [] and store.snapshots.chain_ids() == []


async def test_a_name_moves_to_the_newer_image(tmp_path: Path, busybox: Built) -> None:
    store = ImageStore(tmp_path / "images")
    path = tmp_path / "saved.tar"
    write_docker_archive(path, busybox, ["app:latest"])
    [old] = await store.import_archive(path)
    newer = build_image([tar_entries(whiteout_entries())])
    write_docker_archive(path, newer, ["app:latest"])
    [new] = await store.import_archive(path)
    assert store.require("app").id == new.id
    dangling = store.require(old.id)
    assert dangling.repo_tags == ()  # kept (a container may run it), listed last as <none>
    assert [i.id for i in store.list()] == [new.id, old.id]
    assert store.rootfs_layers(old.id)


async def test_garbage_collection_after_a_crash(tmp_path: Path, busybox: Built) -> None:
    store = ImageStore(tmp_path / "images")
    dead = 2**22 + 12345  # above pid_max's default: no such process
    (store.content.ingest_dir / f"blob-{dead}-partial").write_bytes(b"half")
    (store.content.ingest_dir / f"blob-{os.getpid()}-writing").write_bytes(b"mine")
    (store.snapshots.root / f"tmp-{dead}-x").mkdir()
    stray = store.content.put_bytes(b"no image uses this")
    path = tmp_path / "saved.tar"
    write_docker_archive(path, busybox, ["busybox:kept"])
    [image] = await store.import_archive(path)
    await store.collect_garbage()
    assert [p.name for p in store.content.ingest_dir.iterdir()] == [f"blob-{os.getpid()}-writing"]
    assert not (store.snapshots.root / f"tmp-{dead}-x").exists()
    assert not store.content.has(stray)
    assert set(store.content.digests()) == image.blobs()
    assert store.rootfs_layers(image.id)
