"""Two `nanokube agent` nodes, each in a network namespace this test makes, joined to `nanokube up --node none`.

The namespaces hang off a test bridge on the host with a 10.201.N.0/24 of their own (no default route: nothing
leaves them but traffic to the control plane on the bridge). The agents run in the host's mount namespace
(``nsenter --net``) so the Pod namespaces they mount under /run/netns outlive an agent restart. Checked: each
Node gets a pod CIDR from the control plane, a Pod on one node reaches a Pod on the other at its IP and sees
its real address (routed host-gw, not masqueraded), `kubectl logs`/`exec` reach an agent's Pod through the
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

import pytest

from .cluster import Cluster, eventually

_wait = partial(eventually, timeout=60.0, interval=0.3)

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  %(placement)s
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: nanokube.io/host
    command: [python3, -u, -m, http.server, "8080"]
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


def _free_subnet() -> str:
    """A 10.201.N.0/24 nothing on the host uses yet."""
    used = sh("ip", "-4", "-o", "addr", "show").stdout + sh("ip", "-4", "route", "show").stdout
    for _ in range(50):
        n = random.randrange(256)
        if f"10.201.{n}." not in used:
            return f"10.201.{n}.0/24"
    raise AssertionError("no free 10.201.N.0/24 for the test network")


@dataclass
class TwoNodes:
    cluster: Cluster
    agents: list[Agent]
    token_file: Path


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    from nanokube.kubelet.local import native_available

    ok, why = native_available()
    assert ok, f"the native runtime cannot run here: {why} (run `make test` as root: it installs runc and CNI)"
    tag = uuid.uuid4().hex[:5]
    bridge = f"nkt{tag}"
    subnet = ipaddress.ip_network(_free_subnet())
    hosts = [str(h) for h in subnet.hosts()]
    base = tmp_path_factory.mktemp("agents")
    agents = [Agent(f"{bridge}-{side}", f"{bridge}{side}", hosts[i + 1], base / side) for i, side in
              enumerate("ab")]
    cluster = Cluster(base / "server")
    made_bridge = False
    made: list[str] = []
    try:
        sh("ip", "link", "add", bridge, "type", "bridge")
        made_bridge = True
        sh("ip", "addr", "add", f"{hosts[0]}/{subnet.prefixlen}", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        for agent in agents:
            sh("ip", "netns", "add", agent.netns)
            made.append(agent.netns)
            sh("ip", "link", "add", f"{agent.netns}h", "type", "veth", "peer", "name", "eth0", "netns", agent.netns)
            sh("ip", "link", "set", f"{agent.netns}h", "master", bridge, "up")
            agent.in_netns("ip", "addr", "add", f"{agent.address}/{subnet.prefixlen}", "dev", "eth0")
            agent.in_netns("ip", "link", "set", "eth0", "up")
            agent.in_netns("ip", "link", "set", "lo", "up")
        cluster.start("--host", hosts[0])
        token_file = cluster.data_dir / "node-token"
        assert any("nanokube agent --server" in line for line in cluster.output), "no join hint printed"
        for agent in agents:
            agent.start(cluster.url, token_file)
        yield TwoNodes(cluster, agents, token_file)
    finally:
        if cluster.process is not None:  # the agents remove the Pods' containers and namespaces
            cluster.kubectl("delete", "pod", "web-a", "web-b", "--ignore-not-found", "--timeout=30s", check=False)
        for agent in agents:
            agent.stop()
            _remove_leftovers(agent)
        cluster.stop()
        for name in made:
            sh("ip", "netns", "del", name, check=False)
        if made_bridge:
            sh("ip", "link", "del", bridge, check=False)


def _remove_leftovers(agent: Agent) -> None:
    """Containers and Pod namespaces the agent did not get to remove (a failed test), by their own ids."""
    root = agent.data_dir / "node" / "runc"
    if not root.exists():
        return
    for cid in sh("runc", "--root", str(root), "list", "-q", check=False).stdout.split():
        sh("runc", "--root", str(root), "delete", "-f", cid, check=False)
    for record in (agent.data_dir / "node" / "cni" / "pods").glob("*"):
        sh("ip", "netns", "del", f"{agent.netns}-{record.stem}", check=False)


def _json(c: Cluster, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(c.kubectl(*args, "-o", "json").stdout)  # type: ignore[no-any-return]


def _ready_nodes(c: Cluster, names: set[str]) -> list[dict] | None:  # type: ignore[type-arg]
    nodes = [n for n in _json(c, "get", "nodes")["items"] if n["metadata"]["name"] in names]
    ready = [n for n in nodes if any(cond["type"] == "Ready" and cond["status"] == "True"
                                     for cond in (n.get("status") or {}).get("conditions") or [])]
    return ready if len(ready) == len(names) else None


def _fetch(c: Cluster, pod: str, ip: str) -> str:
    code = f"import urllib.request as u; print(u.urlopen('http://{ip}:8080/', timeout=5).status)"
    return c.kubectl("exec", pod, "--", "python3", "-c", code, check=False).stdout.strip()


def _pod_ip(c: Cluster, name: str) -> str:
    return str(_json(c, "get", "pod", name)["status"]["podIP"])


def test_pods_on_two_agents_reach_each_other(two_nodes: TwoNodes) -> None:
    c, (a, b) = two_nodes.cluster, two_nodes.agents
    nodes = _wait(lambda: _ready_nodes(c, {a.name, b.name}), "both agents' Nodes to be Ready")
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes}
    assert len(set(cidrs.values())) == 2
    assert all(ipaddress.ip_network(x).subnet_of(ipaddress.ip_network("10.42.0.0/16")) for x in cidrs.values())
    kubelet = {n["metadata"]["name"]: n["metadata"]["annotations"]["nanokube.io/kubelet-address"] for n in nodes}
    assert kubelet == {a.name: a.address, b.name: b.address}
    assert all("node-role.kubernetes.io/control-plane" not in n["metadata"]["labels"] for n in nodes)

    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web-a", "placement": f"nodeName: {a.name}"})
    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web-b", "placement":
                                                f"nodeSelector: {{kubernetes.io/hostname: {b.name}}}"})
    c.kubectl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-b", "--timeout=60s")
    ip_a, ip_b = _pod_ip(c, "web-a"), _pod_ip(c, "web-b")
    assert ipaddress.ip_address(ip_a) in ipaddress.ip_network(cidrs[a.name])
    assert ipaddress.ip_address(ip_b) in ipaddress.ip_network(cidrs[b.name])
    # Each node routes the other's pod CIDR to it directly (same subnet: host-gw).
    assert f"via {b.address}" in a.in_netns("ip", "route", "show", cidrs[b.name])
    assert f"via {a.address}" in b.in_netns("ip", "route", "show", cidrs[a.name])

    assert _wait(lambda: _fetch(c, "web-a", ip_b) == "200", "web-a to reach web-b")
    assert _wait(lambda: _fetch(c, "web-b", ip_a) == "200", "web-b to reach web-a")
    # web-b saw web-a's own address: Pod-to-Pod traffic is not masqueraded (logs also come via the agent).
    assert _wait(lambda: ip_a in c.kubectl("logs", "web-b").stdout, "web-b's log of web-a's request")
    result = c.kubectl("exec", "web-a", "--", "sh", "-c", "echo from-$(hostname); exit 3", check=False)
    assert result.returncode == 3 and "from-web-a" in result.stdout


def test_a_restarted_agent_readopts_its_containers(two_nodes: TwoNodes) -> None:
    c, a = two_nodes.cluster, two_nodes.agents[0]
    c.kubectl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-b", "--timeout=60s")
    before = _json(c, "get", "pod", "web-a")["status"]["containerStatuses"][0]
    ip_a = _pod_ip(c, "web-a")
    a.stop()
    # Stopped: its routes are gone, its container runs on.
    listing = sh("runc", "--root", str(a.data_dir / "node" / "runc"), "list").stdout
    assert before["containerID"].split("://")[-1] in listing and "running" in listing
    a.start(c.url, two_nodes.token_file)
    _wait(lambda: _ready_nodes(c, {a.name}), "the restarted agent's Node")
    assert _wait(lambda: _fetch(c, "web-b", ip_a) == "200", "web-b to reach web-a again")
    after = _json(c, "get", "pod", "web-a")["status"]["containerStatuses"][0]
    assert after["containerID"] == before["containerID"] and after["restartCount"] == before["restartCount"]
    assert _pod_ip(c, "web-a") == ip_a
