"""Three `nanokube agent` nodes, each in a network namespace this test makes, joined to `nanokube up --node none`.

Two namespaces hang off one test bridge on the host, the third off another, each bridge with a 10.201.N.0/24
of its own; the host routes between the two (no default route in the namespaces: nothing leaves the test
networks). The agents run in the host's mount namespace
(``nsenter --net``) so the Pod namespaces they mount under /run/netns outlive an agent restart. Checked: each
Node gets a pod CIDR from the control plane, a Pod on one node reaches a Pod on the other at its IP and sees
its real address (host-gw on a shared subnet, the VXLAN overlay across the host; not masqueraded), `kubectl logs`/`exec` reach an agent's Pod through the
API server, and an agent stopped and started again leaves its containers running and re-adopts them.

Needs root, runc and the CNI plugins (what `make test` installs); fails, not skips, without them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster, eventually

_wait = partial(eventually, timeout=60.0, interval=0.3)

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: %(name)s}}
spec:
  %(placement)s
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: nanokube.io/host
    command: [python3, -u, -m, http.server, "8080", --directory, /usr/lib/python3.11]
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web-c}
spec:
  selector: {app: web-c}
  ports: [{port: 80, targetPort: 8080}]
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr}")
    return result


@dataclass
class Agent:
    name: str
    netns: str
    address: str
    data_dir: Path
    process: subprocess.Popen[str] | None = None
    log: Path = field(default_factory=Path)

    def start(self, server: str, token_file: Path) -> None:
        cmd = ["nsenter", f"--net=/run/netns/{self.netns}", "--", sys.executable, "-m", "nanokube.cmd.main",
               "agent", "--server", server, "--token-file", str(token_file), "--data-dir", str(self.data_dir),
               "--node-name", self.name, "--address", self.address, "--cluster-cidr", "10.42.0.0/16",
               "--netns-prefix", f"{self.netns}-"]
        self.log = self.data_dir.with_suffix(".log")
        with self.log.open("a") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True,
                                            env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def in_netns(self, *argv: str) -> str:
        return sh("ip", "netns", "exec", self.netns, *argv).stdout


def _free_subnets(count: int) -> list[ipaddress.IPv4Network]:
    """``count`` 10.201.N.0/24s nothing on the host uses yet."""
    used = sh("ip", "-4", "-o", "addr", "show").stdout + sh("ip", "-4", "route", "show").stdout
    free = [n for n in random.sample(range(256), 256) if f"10.201.{n}." not in used]
    assert len(free) >= count, "no free 10.201.N.0/24s for the test networks"
    return [ipaddress.IPv4Network(f"10.201.{n}.0/24") for n in free[:count]]


@dataclass
class Nodes:
    cluster: Cluster
    agents: list[Agent]
    token_file: Path


def _wire(agent: Agent, bridge: str, subnet: ipaddress.IPv4Network, other: ipaddress.IPv4Network) -> None:
    """The agent's namespace: eth0 on ``bridge``, and the ``other`` test subnet through the host (no default
    route: nothing leaves the test networks)."""
    sh("ip", "link", "add", f"{agent.netns}h", "type", "veth", "peer", "name", "eth0", "netns", agent.netns)
    sh("ip", "link", "set", f"{agent.netns}h", "master", bridge, "up")
    agent.in_netns("ip", "addr", "add", f"{agent.address}/{subnet.prefixlen}", "dev", "eth0")
    agent.in_netns("ip", "link", "set", "eth0", "up")
    agent.in_netns("ip", "link", "set", "lo", "up")
    agent.in_netns("ip", "route", "add", str(other), "via", str(subnet.network_address + 1))


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """Agents a and b share a test bridge (host-gw between them); c is on a second bridge, routed through the
    host (VXLAN between it and the others)."""
    from nanokube.kubelet.local import native_available

    ok, why = native_available()
    assert ok, f"the native runtime cannot run here: {why} (run `make test` as root: it installs runc and CNI)"
    tag = uuid.uuid4().hex[:5]
    subnets = _free_subnets(2)
    bridges = [f"nkt{tag}{i}" for i in range(2)]
    base = tmp_path_factory.mktemp("agents")
    place = {"a": (0, 2), "b": (0, 3), "c": (1, 2)}  # agent -> (bridge, host number)
    agents = [Agent(f"nkt{tag}-{side}", f"nkt{tag}{side}", str(subnets[i].network_address + n), base / side)
              for side, (i, n) in place.items()]
    cluster = Cluster(base / "server")
    made_links: list[str] = []
    made: list[str] = []
    try:
        for bridge, subnet in zip(bridges, subnets, strict=True):
            sh("ip", "link", "add", bridge, "type", "bridge")
            made_links.append(bridge)
            sh("ip", "addr", "add", f"{subnet.network_address + 1}/{subnet.prefixlen}", "dev", bridge)
            sh("ip", "link", "set", bridge, "up")
        for agent, (i, _) in zip(agents, place.values(), strict=True):
            sh("ip", "netns", "add", agent.netns)
            made.append(agent.netns)
            _wire(agent, bridges[i], subnets[i], subnets[1 - i])
        cluster.start("--host", str(subnets[0].network_address + 1))
        token_file = cluster.data_dir / "node-token"
        assert any("nanokube agent --server" in line for line in cluster.output), "no join hint printed"
        for agent in agents:
            agent.start(cluster.url, token_file)
        yield Nodes(cluster, agents, token_file)
    finally:
        if cluster.process is not None:  # the agents remove the Pods' containers and namespaces
            cluster.kubectl("delete", "pod", "web-a", "web-b", "web-c", "--ignore-not-found", "--timeout=30s",
                            check=False)
        for agent in agents:
            agent.stop()
            _remove_leftovers(agent)
        cluster.stop()
        for name in made:
            sh("ip", "netns", "del", name, check=False)
        for link in made_links:
            sh("ip", "link", "del", link, check=False)


def _remove_leftovers(agent: Agent) -> None:
    """Containers and Pod namespaces the agent did not get to remove (a failed test), by their own ids."""
    root = agent.data_dir / "node" / "runc"
    if not root.exists():
        return
    for cid in sh("runc", "--root", str(root), "list", "-q", check=False).stdout.split():
        sh("runc", "--root", str(root), "delete", "-f", cid, check=False)
    for record in (agent.data_dir / "node" / "cni" / "pods").glob("*"):
        sh("ip", "netns", "del", f"{agent.netns}-{record.stem}", check=False)


def _json(c: Cluster, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(c.kubectl(*args, "-o", "json").stdout)
    return result


def _ready_nodes(c: Cluster, names: set[str]) -> list[dict[str, Any]]:
    nodes = [n for n in _json(c, "get", "nodes")["items"] if n["metadata"]["name"] in names]
    ready = [n for n in nodes if any(cond["type"] == "Ready" and cond["status"] == "True"
                                     for cond in (n.get("status") or {}).get("conditions") or [])]
    return ready if len(ready) == len(names) else []


def _fetch(c: Cluster, pod: str, ip: str, port: int = 8080) -> str:
    code = f"import urllib.request as u; print(u.urlopen('http://{ip}:{port}/', timeout=5).status)"
    return c.kubectl("exec", pod, "--", "python3", "-c", code, check=False).stdout.strip()


def _pod_ip(c: Cluster, name: str) -> str:
    return str(_json(c, "get", "pod", name)["status"]["podIP"])


def test_pods_on_agents_reach_each_other(three_nodes: Nodes) -> None:
    c, (a, b, far) = three_nodes.cluster, three_nodes.agents
    nodes = _wait(lambda: _ready_nodes(c, {a.name, b.name, far.name}), "the agents' Nodes to be Ready")
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes}
    assert len(set(cidrs.values())) == 3
    assert all(ipaddress.IPv4Network(x).subnet_of(ipaddress.IPv4Network("10.42.0.0/16")) for x in cidrs.values())
    kubelet = {n["metadata"]["name"]: n["metadata"]["annotations"]["nanokube.io/kubelet-address"] for n in nodes}
    assert kubelet == {a.name: a.address, b.name: b.address, far.name: far.address}
    assert all("node-role.kubernetes.io/control-plane" not in n["metadata"]["labels"] for n in nodes)

    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web-a", "placement": f"nodeName: {a.name}"})
    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web-b", "placement":
                                                f"nodeSelector: {{kubernetes.io/hostname: {b.name}}}"})
    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web-c", "placement": f"nodeName: {far.name}"})
    c.kubectl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-b", "pod/web-c", "--timeout=60s")
    ips = {pod: _pod_ip(c, f"web-{pod}") for pod in "abc"}
    for agent, pod in ((a, "a"), (b, "b"), (far, "c")):
        assert ipaddress.ip_address(ips[pod]) in ipaddress.ip_network(cidrs[agent.name])
    # a and b share a subnet: host-gw. c is behind the host: the VXLAN overlay, both ways.
    assert f"via {b.address} dev eth0" in a.in_netns("ip", "route", "show", cidrs[b.name])
    assert f"via {a.address} dev eth0" in b.in_netns("ip", "route", "show", cidrs[a.name])
    assert "dev nk.vxlan" in a.in_netns("ip", "route", "show", cidrs[far.name])
    assert "dev nk.vxlan" in far.in_netns("ip", "route", "show", cidrs[a.name])

    for source, target in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "b")):
        assert _wait(lambda: _fetch(c, f"web-{source}", ips[target]) == "200",  # noqa: B023
                     f"web-{source} to reach web-{target}")
    # The servers saw the clients' own addresses: Pod-to-Pod traffic is not masqueraded (and logs come
    # through the API server from the agents).
    assert _wait(lambda: ips["a"] in c.kubectl("logs", "web-b").stdout, "web-b's log of web-a's request")
    assert _wait(lambda: ips["a"] in c.kubectl("logs", "web-c").stdout, "web-c's log of web-a's request")
    # Full-size packets cross the overlay too (path MTU discovery past the VXLAN device's smaller MTU).
    big = ("import urllib.request as u; r = u.urlopen('http://%s:8080/typing.py', timeout=10); "
           "body = r.read(); print(len(body) == int(r.headers.get('Content-Length') or len(body)), len(body))")
    said = _wait(lambda: c.kubectl("exec", "web-a", "--", "python3", "-c", big % ips["c"],
                                   check=False).stdout.split(), "a large response across the overlay")
    assert said[0] == "True" and int(said[1]) > 50000, said
    result = c.kubectl("exec", "web-c", "--", "sh", "-c", "echo from-$(hostname); exit 3", check=False)
    assert result.returncode == 3 and "from-web-c" in result.stdout


def test_a_service_reaches_its_pod_on_another_node(three_nodes: Nodes) -> None:
    c = three_nodes.cluster
    c.kubectl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-c", "--timeout=60s")
    c.kubectl("apply", "-f", "-", input=SERVICE)
    cluster_ip = _json(c, "get", "service", "web-c")["spec"]["clusterIP"]
    # web-a's node (its proxy) sends the Service's traffic on to web-c, on the far node.
    assert _wait(lambda: _fetch(c, "web-a", cluster_ip, 80) == "200", "web-a to reach Service web-c")
    # By name too: each agent serves cluster DNS for its Pods behind kube-dns (10.43.0.10).
    assert _wait(lambda: _fetch(c, "web-a", "web-c", 80) == "200", "web-a to reach web-c by its DNS name")
    assert _wait(lambda: _fetch(c, "web-c", "web-c.default.svc.cluster.local", 80) == "200",
                 "web-c to reach its own Service by its full name")


def test_a_restarted_agent_readopts_its_containers(three_nodes: Nodes) -> None:
    c, a = three_nodes.cluster, three_nodes.agents[0]
    c.kubectl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-b", "--timeout=60s")
    before = _json(c, "get", "pod", "web-a")["status"]["containerStatuses"][0]
    ip_a = _pod_ip(c, "web-a")
    a.stop()
    # Stopped: its container runs on.
    listing = sh("runc", "--root", str(a.data_dir / "node" / "runc"), "list").stdout
    assert before["containerID"].split("://")[-1] in listing and "running" in listing
    a.start(c.url, three_nodes.token_file)
    _wait(lambda: _ready_nodes(c, {a.name}), "the restarted agent's Node")
    assert _wait(lambda: _fetch(c, "web-b", ip_a) == "200", "web-b to reach web-a again")
    after = _json(c, "get", "pod", "web-a")["status"]["containerStatuses"][0]
    assert after["containerID"] == before["containerID"] and after["restartCount"] == before["restartCount"]
    assert _pod_ip(c, "web-a") == ip_a
