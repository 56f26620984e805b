"""What `nanokube agent` does before its node runs: flags, token, CA trust, and waiting for a pod CIDR."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nanokube.cmd.agent import parser, read_token, trust
from nanokube.cmd.cluster import StartupError
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.nodeipam import NodeIPAMController, NodeIPAMSettings
from nanokube.kubelet.local import LocalNode, LocalNodeSettings
from nanokube.kubelet.server import KUBELET_ADDRESS_ANNOTATION
from nanokube.util.certs import ensure_node_token, ensure_pki


def test_token_and_ca_file_choices(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    token = ensure_node_token(tmp_path / "node-token", pki.ca_cert)
    args = parser().parse_args(["--server", "https://10.0.0.1:6443", "--token-file", str(tmp_path / "node-token"),
                                "--ca-file", str(pki.ca_cert)])
    assert read_token(args) == token
    assert trust(args, token, tmp_path) == pki.ca_cert  # the file given, checked against the token's hash
    other = ensure_pki(tmp_path / "other", ["127.0.0.1"])
    args.ca_file = other.ca_cert
    with pytest.raises(StartupError, match="not the CA the token names"):
        trust(args, token, tmp_path)
    args.ca_file = None
    (tmp_path / "ca.crt").write_bytes(pki.ca_cert.read_bytes())  # kept from an earlier start: no handshake
    assert trust(args, token, tmp_path) == tmp_path / "ca.crt"
    with pytest.raises(StartupError, match="no CA hash"):
        trust(args, "bare-secret", tmp_path)
    with pytest.raises(StartupError, match="no token"):
        read_token(parser().parse_args(["--server", "https://h:1", "--token", ""]))
    with pytest.raises(StartupError, match="https://HOST:PORT"):
        trust(parser().parse_args(["--server", "http://h:1", "--token", token]), token, tmp_path / "fresh")


async def test_node_registers_then_waits_for_its_pod_cidr(tmp_path: Path) -> None:
    async with InProcessCluster() as cluster:
        nodes = cluster.resource("", "v1", "nodes")
        node = LocalNode(cluster.client, LocalNodeSettings(data_dir=tmp_path, name="worker", pod_cidr="",
                                                           address="10.9.0.2", kubelet_host="10.9.0.2",
                                                           control_plane=False))
        config = node.config("10.9.0.2")
        stop = asyncio.Event()
        waiting = asyncio.create_task(node.await_pod_cidr(config, stop=stop, poll=0.05))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # nothing allocates yet
        registered = await cluster.client.get(nodes, "", "worker")
        assert registered["metadata"]["annotations"][KUBELET_ADDRESS_ANNOTATION] == "10.9.0.2"
        assert "node-role.kubernetes.io/control-plane" not in registered["metadata"]["labels"]
        ipam = NodeIPAMController(cluster.client, NodeIPAMSettings("10.42.0.0/16"))
        ipam_stop = asyncio.Event()
        ipam_task = asyncio.create_task(ipam.run(stop=ipam_stop))
        try:
            assert await asyncio.wait_for(waiting, 10) == "10.42.0.0/24"
            # A restart finds the Node with its CIDR and does not wait; a moved kubelet is re-announced.
            moved = LocalNode(cluster.client, LocalNodeSettings(data_dir=tmp_path, name="worker", pod_cidr="",
                                                                kubelet_host="10.9.0.3"))
            assert await moved.await_pod_cidr(moved.config("10.9.0.3"), stop=stop) == "10.42.0.0/24"
            again = await cluster.client.get(nodes, "", "worker")
            assert again["metadata"]["annotations"][KUBELET_ADDRESS_ANNOTATION] == "10.9.0.3"
        finally:
            ipam_stop.set()
            await ipam_task
        # Stopped while waiting: it gives up with no CIDR.
        lonely = LocalNode(cluster.client, LocalNodeSettings(data_dir=tmp_path, name="lonely", pod_cidr=""))
        stop.set()
        assert await lonely.await_pod_cidr(lonely.config("10.9.0.4"), stop=stop) == ""


async def test_agent_waits_for_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    from nanokube.client.http import HttpClient
    from nanokube.cmd.agent import wait_for_server

    async with InProcessCluster(serve=True) as cluster:
        up = HttpClient(cluster.url)
        try:
            assert await wait_for_server(up, cluster.url, asyncio.Event())
        finally:
            await up.close()
        down_url = cluster.url
    down = HttpClient(down_url)  # nothing listens there any more
    stop = asyncio.Event()
    try:
        waiting = asyncio.create_task(wait_for_server(down, down_url, stop, retry=0.05))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        stop.set()
        assert await waiting is False
    finally:
        await down.close()
    assert "waiting for the server" in capsys.readouterr().out
