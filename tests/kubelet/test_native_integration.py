"""The native runtime with the node's real pieces, as root: Pod networks from the CNI ``PodNetwork`` (bridge +
host-local on a private 10.244.x.0/24, no masquerading) and images from the node's ``ImageStore`` (a two-layer
image with whiteouts, imported from a docker-archive). Traffic stays between the host and the test's bridge."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import secrets
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from images_helpers import build_image, busybox_entries, tar_entries, whiteout_entries, write_docker_archive
from native_helpers import Native, force_clean, leftovers, require_native

from nanokube.kubelet.images.store import ImageStore
from nanokube.kubelet.network import PodNetwork, PodNetworkConfig
from nanokube.kubelet.runtime.interface import ImageSpec, RuntimeFailure
from nanokube.kubelet.runtime.native import NativeRuntime, NativeSettings
from nanokube.kubelet.runtime.rootfs import DirectoryImageStore

pytestmark = pytest.mark.timeout(120)
LAYERED = "nanokube.test/layered:1"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def unused_cidr() -> str:
    taken = sh("ip", "-o", "-4", "addr") + sh("ip", "-o", "-4", "route", "show", "table", "all")
    for x in random.sample(range(100, 251), 151):
        if f"10.244.{x}." not in taken:
            return f"10.244.{x}.0/24"
    raise AssertionError("no free 10.244.x.0/24 on this host")


@dataclass
class Node:
    native: Native
    network: PodNetwork
    store: ImageStore
    cidr: str
    tag: str


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    require_native()
    missing = [p for p in ("bridge", "host-local") if not os.access(f"/usr/lib/cni/{p}", os.X_OK)]
    if missing:
        pytest.fail(f"these tests need the CNI plugins {missing} (Debian package containernetworking-plugins)")
    tag = "nki" + secrets.token_hex(3)
    cidr = unused_cidr()
    state = tmp_path / "node"
    network = PodNetwork(PodNetworkConfig(pod_cidr=cidr, state_dir=str(state), bridge=tag, network_name=tag,
                                          netns_prefix=tag + "-", ip_masq=False))
    store = ImageStore(tmp_path / "images")
    built = build_image([tar_entries(busybox_entries()), tar_entries(whiteout_entries())])
    write_docker_archive(tmp_path / "layered.tar", built, [LAYERED])
    await store.import_archive(tmp_path / "layered.tar")
    settings = NativeSettings(state_dir=state, cgroup_root=f"nanokube-test-{tag}")
    native = Native(NativeRuntime(settings, network, store), settings, network, DirectoryImageStore(),
                    tmp_path / "logs", netns_prefix=tag + "-")
    left: dict[str, list[str]] = {}
    try:
        await network.start()
        yield Node(native, network, store, cidr, tag)
        for sandbox in await native.runtime.list_pod_sandboxes():
            await native.runtime.remove_pod_sandbox(sandbox.id)
        await native.runtime.close()
        left = {k: v for k, v in leftovers(native).items() if v}
    finally:
        await native.runtime.close()
        force_clean(native)
        for info in network.pods():
            await network.teardown(info.pod_uid)
        subprocess.run(["ip", "link", "delete", "dev", tag], capture_output=True)
    assert not left, f"left on the host: {left}"


def fetch(url: str) -> bytes:
    with NO_PROXY.open(url, timeout=5) as reply:
        return bytes(reply.read())


async def test_layered_image_from_the_store(node: Node) -> None:
    native = node.native
    sid = await native.pod("layers")
    cid = await native.run(sid, "c", ["sh", "-c", "cat /var/www/index.html /etc/added; ls /var/www; "
                                                  "test -e /etc/motd || echo motd gone; echo $PATH"], image=LAYERED)
    status = await native.wait_exit(cid)
    assert status.exit_code == 0, await native.log(cid)
    assert await native.log(cid) == b"new index\nadded\nindex.html\nmotd gone\n/bin:/sbin:/usr/bin:/usr/sbin\n"
    record = node.store.get(LAYERED)
    assert record is not None and status.image_ref == record.image_ref and status.image == LAYERED
    with pytest.raises(RuntimeFailure):  # the store refuses while a container's overlay uses the image
        await native.runtime.remove_image(ImageSpec(LAYERED))
    await native.runtime.remove_container(cid)
    await native.runtime.remove_image(ImageSpec(LAYERED))
    assert await native.runtime.image_status(ImageSpec(LAYERED)) is None


async def test_pods_get_their_own_ips_on_the_bridge(node: Node) -> None:
    native = node.native
    web = await native.pod("web")
    ip = (await native.runtime.pod_sandbox_status(web)).ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(node.cidr)
    await native.run(web, "httpd", ["httpd", "-f", "-p", "8080", "-h", "/var/www"], image=LAYERED)
    for _ in range(100):
        try:
            body = await asyncio.to_thread(fetch, f"http://{ip}:8080/index.html")
            break
        except OSError:
            await asyncio.sleep(0.05)
    assert body == b"new index\n"
    client = await native.pod("client")
    cid = await native.run(client, "get", ["wget", "-qO-", f"http://{ip}:8080/index.html"], image=LAYERED)
    assert (await native.wait_exit(cid)).exit_code == 0
    assert await native.log(cid) == b"new index\n"
    await native.runtime.remove_pod_sandbox(web)
    replacement = await native.pod("web")
    assert (await native.runtime.pod_sandbox_status(replacement)).ip not in ("", ip)
