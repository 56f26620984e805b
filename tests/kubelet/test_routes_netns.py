"""Cross-node routes applied for real: two "nodes" (network namespaces) on different subnets behind a router
namespace reach each other's pod addresses through the VXLAN overlay ``RouteManager`` sets up from Nodes, and
everything it added goes when a Node goes and when it stops. Root only (CI runs as root); everything lives in
namespaces this test makes and removes by name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.network.crossnode import RouteManager, RouteSettings


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr}")
    return result


@dataclass
class Net:
    router: str
    nodes: dict[str, str]  # node name -> namespace

    def run(self, node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.nodes[node], *argv, check=check)


# node name -> (underlay address, router side, pod CIDR's first address)
LAYOUT = {"n1": ("192.0.2.2/24", "192.0.2.1/24", "10.42.1.1/24"),
          "n2": ("198.51.100.2/24", "198.51.100.1/24", "10.42.2.1/24")}


@pytest.fixture
def net() -> Iterator[Net]:
    assert os.geteuid() == 0, "this test needs root (CI runs it as root): it makes network namespaces"
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    result = Net(f"nkr{tag}r", {name: f"nkr{tag}{name}" for name in LAYOUT})
    try:
        for ns in (result.router, *result.nodes.values()):
            sh("ip", "netns", "add", ns)
            made.append(ns)
        r = result.router
        sh("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", r, "link", "set", "lo", "up")
        for name, (address, gateway, pod) in LAYOUT.items():
            ns = result.nodes[name]
            sh("ip", "-n", r, "link", "add", f"to{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", r, "addr", "add", gateway, "dev", f"to{name}")
            sh("ip", "-n", r, "link", "set", f"to{name}", "up")
            for argv in (("addr", "add", address, "dev", "eth0"), ("link", "set", "eth0", "up"),
                         ("link", "set", "lo", "up"), ("route", "add", "default", "via", gateway.split("/")[0]),
                         ("link", "add", "pods", "type", "bridge"), ("addr", "add", pod, "dev", "pods"),
                         ("link", "set", "pods", "up")):
                sh("ip", "-n", ns, *argv)
        yield result
    finally:
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)


def node(name: str) -> dict[str, Any]:
    address, _, pod = LAYOUT[name]
    cidr = pod.rsplit(".", 1)[0] + ".0/24"
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": address.split("/")[0]}],
                       "nodeInfo": {"containerRuntimeVersion": "native://runc"}}}


async def _until(check: Any, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_vxlan_overlay_between_routed_nodes(net: Net) -> None:
    server = subprocess.Popen(["ip", "netns", "exec", net.nodes["n2"], sys.executable, "-u", "-m", "http.server",
                               "--bind", "10.42.2.1", "8080"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    fetch = ("import socket; s = socket.create_connection(('10.42.2.1', 8080), timeout=3, "
             "source_address=('10.42.1.1', 0)); s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); "
             "print(s.recv(12).decode())")
    try:
        async with InProcessCluster() as cluster:
            nodes = cluster.resource("", "v1", "nodes")
            for name in LAYOUT:
                await cluster.client.create(nodes, "", node(name))
            managers = {name: RouteManager(cluster.client, RouteSettings(
                name, LAYOUT[name][0].split("/")[0], node(name)["spec"]["podCIDR"], vxlan_device="nk.vxlan",
                command_prefix=("ip", "netns", "exec", net.nodes[name]))) for name in LAYOUT}
            stop = asyncio.Event()
            tasks = [asyncio.create_task(m.run(stop=stop)) for m in managers.values()]
            try:
                # Not directly connected (a router between): the overlay, not host-gw.
                await _until(lambda: "nk.vxlan" in net.run("n1", "ip", "route", "show", "10.42.2.0/24").stdout,
                             "n1's route to n2's pods over the overlay")
                await _until(lambda: "nk.vxlan" in net.run("n2", "ip", "route", "show", "10.42.1.0/24").stdout,
                             "n2's route to n1's pods over the overlay")
                await _until(lambda: "HTTP/1.0 200" in net.run("n1", sys.executable, "-c", fetch,
                                                               check=False).stdout, "a request through the overlay")
                rules = net.run("n1", "iptables", "-t", "nat", "-S", "POSTROUTING").stdout
                assert "-s 10.42.1.0/24 -d 10.42.0.0/16" in rules and "RETURN" in rules
                # n2 leaves: n1 drops its route and, with no tunnelled peer left, its device.
                await cluster.client.delete(nodes, "", "n2")
                await _until(lambda: net.run("n1", "ip", "link", "show", "nk.vxlan", check=False).returncode != 0,
                             "n1's overlay device to go")
                assert net.run("n1", "ip", "route", "show", "10.42.2.0/24").stdout == ""
            finally:
                stop.set()
                await asyncio.gather(*tasks)
            # Stopped: n2's device and the exemption rules are gone.
            assert net.run("n2", "ip", "link", "show", "nk.vxlan", check=False).returncode != 0
            assert "RETURN" not in net.run("n1", "iptables", "-t", "nat", "-S", "POSTROUTING").stdout
    finally:
        server.kill()
        output = server.communicate()[0]
    assert "10.42.1.1" in output  # the server saw the "pod" address, not a masqueraded one
