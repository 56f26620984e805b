"""Pulling from a real registry: Debian's ``docker-registry`` on 127.0.0.1:<free port>, started per module, with
images pushed by the test (monolithic uploads). Covers OCI and Docker manifests, multi-arch indexes, pull
policies, shared concurrent pulls and reusing layers that are already unpacked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from images_helpers import (
    DOCKER_LIST,
    Built,
    build_image,
    busybox_entries,
    index_of,
    local_registry,
    overlay_mount,
    push,
    require_root,
    tar_entries,
    whiteout_entries,
)

from nanokube.kubelet.images.registry import NotFound, PullProgress
from nanokube.kubelet.images.store import ErrImageNeverPull, ImagePullError, ImageStore


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_root()
    with local_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="module")
def busybox() -> Built:
    return build_image([tar_entries(busybox_entries()), tar_entries(whiteout_entries())])


async def test_pull_oci_image(tmp_path: Path, registry: str, busybox: Built) -> None:
    await push(registry, "busybox", "test", busybox)
    store = ImageStore(tmp_path / "images")
    events: list[PullProgress] = []
    image = await store.pull(f"{registry}/busybox:test", progress=events.append)
    assert image.id == busybox.config_digest
    assert image.repo_tags == (f"{registry}/busybox:test",)
    assert image.repo_digests == (f"{registry}/busybox@{busybox.digest}",)
    assert image.image_ref == f"{registry}/busybox@{busybox.digest}"
    assert image.source == "pull"
    assert {e.phase for e in events} == {"resolving", "downloading", "unpacking", "done"}
    for layer in busybox.layers[:1]:
        done = [e for e in events if e.phase == "downloading" and e.total == len(layer)]
        assert done[-1].done == len(layer)
    with overlay_mount(store.rootfs_layers(f"{registry}/busybox:test"), tmp_path / "rootfs") as rootfs:
        assert (rootfs / "var/www/index.html").read_text() == "new index\n"
        assert not (rootfs / "etc/motd").exists()
    # by digest too, and the store resolves the repo digest back to the same image
    by_digest = await store.pull(f"{registry}/busybox@{busybox.digest}", policy="Always")
    assert by_digest.id == image.id
    assert store.get(f"{registry}/busybox@{busybox.digest}") == by_digest


async def test_pull_docker_schema2_and_reuse_of_unpacked_layers(tmp_path: Path, registry: str,
                                                                busybox: Built) -> None:
    base = tar_entries(busybox_entries())
    docker = build_image([base], docker=True)
    await push(registry, "bb-docker", "1", docker)
    store = ImageStore(tmp_path / "images")
    first = await store.pull(f"{registry}/bb-docker:1")
    assert first.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    await push(registry, "oci-two", "1", busybox)  # shares its bottom layer (same diff id) with bb-docker
    events: list[PullProgress] = []
    second = await store.pull(f"{registry}/oci-two:1", progress=events.append)
    downloaded = {e.digest for e in events if e.phase == "downloading"}
    assert downloaded == {busybox.config_digest} | {
        d.digest for d in second.layers[1:]}  # the shared layer was already unpacked: not fetched again
    assert second.chain_ids[0] == first.chain_ids[0]


@pytest.mark.parametrize("docker_list", [False, True])
async def test_multi_arch_index_selects_linux_amd64(tmp_path: Path, registry: str, busybox: Built,
                                                    docker_list: bool) -> None:
    arm = build_image([tar_entries(whiteout_entries())], arch="arm64", docker=docker_list)
    amd = build_image([tar_entries(busybox_entries())], docker=docker_list)
    await push(registry, "multi", "", arm)
    await push(registry, "multi", "", amd)
    index = index_of([(arm, "arm64"), (amd, "amd64")], docker=docker_list)
    kind = DOCKER_LIST if docker_list else "application/vnd.oci.image.index.v1+json"
    await push(registry, "multi", "both", None, index=index, index_type=kind)
    store = ImageStore(tmp_path / "images")
    image = await store.pull(f"{registry}/multi:both")
    assert image.id == amd.config_digest
    assert image.manifest_digest == amd.digest
    assert image.index_digest != "" and image.repo_digests == (f"{registry}/multi@{image.index_digest}",)
    assert store.config(image.id).architecture == "amd64"


async def test_pull_policies(tmp_path: Path, registry: str, busybox: Built) -> None:
    await push(registry, "policy", "v", busybox)
    store = ImageStore(tmp_path / "images")
    ref = f"{registry}/policy:v"
    with pytest.raises(ErrImageNeverPull, match="not present with pull policy of Never"):
        await store.pull(ref, policy="Never")
    pulled = await store.pull(ref)
    assert await store.pull(ref, policy="Never") == pulled
    other = build_image([tar_entries(whiteout_entries())])
    await push(registry, "policy", "v", other)  # the tag moves in the registry
    assert (await store.pull(ref, policy="IfNotPresent")).id == pulled.id
    assert (await store.pull(ref, policy="Always")).id == other.config_digest


async def test_concurrent_pulls_share_one_download(tmp_path: Path, registry: str, busybox: Built) -> None:
    await push(registry, "shared", "1", busybox)
    store = ImageStore(tmp_path / "images")
    seen: list[list[PullProgress]] = [[], []]
    a, b = await asyncio.gather(store.pull(f"{registry}/shared:1", progress=seen[0].append),
                                store.pull(f"{registry}/shared:1", progress=seen[1].append))
    assert a == b
    assert seen[0] and not seen[1]  # only the first caller's pull ran


async def test_missing_image(tmp_path: Path, registry: str) -> None:
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImagePullError, match="not found") as info:
        await store.pull(f"{registry}/nosuch:1")
    assert isinstance(info.value.__cause__, NotFound)
    assert info.value.reason == "ErrImagePull"
    assert str(info.value).startswith(f'failed to pull and unpack image "{registry}/nosuch:1"')
    assert store.list() == []
