"""Services on the real node: the nftables proxy balances a ClusterIP, follows readiness, serves NodePorts.

Runs `nanokube up --node native` (root, runc, CNI, nft; fails, not skips, without them) with its own proxy
table and Service range so runs on one machine do not collide. Pods are the host image running a tiny HTTP
server that answers with the Pod's name. Readiness is driven through a readiness gate the test flips, so the
test does not depend on probe timing. Nothing is sent outside this machine: the node address is local.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import socket
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from .cluster import KUBECTL, NATIVE_POD_CIDR, Cluster, eventually, native_cluster

GATE = "nanokube.io/in-rotation"
TABLE = f"nkpx{uuid.uuid4().hex[:6]}"
SERVICE_CIDR = f"10.43.{ipaddress.ip_network(NATIVE_POD_CIDR, strict=False).network_address.packed[2]}.0/24"
NODE_PORT = random.randint(30000, 32767)

SERVER = ("import http.server, os\n"
          "class H(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        body = os.environ['POD_NAME'].encode()\n"
          "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
          "        self.wfile.write(body)\n"
          "    def log_message(self, *args): pass\n"
          "http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()\n")

# From inside a Pod: N requests to host:port, then the count per answer as JSON.
CLIENT = ("import json, socket, sys, collections\n"
          "seen = collections.Counter()\n"
          "for _ in range(int(sys.argv[3])):\n"
          "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
          "    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); data = b''\n"
          "    while chunk := s.recv(4096): data += chunk\n"
          "    s.close(); seen[data.split(b'\\r\\n\\r\\n', 1)[1].decode()] += 1\n"
          "print(json.dumps(seen))\n")

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "who"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "who"}},
             "template": {"metadata": {"labels": {"app": "who"}}, "spec": {
                 "terminationGracePeriodSeconds": 1, "readinessGates": [{"conditionType": GATE}],
                 "containers": [{"name": "web", "image": "nanokube.io/host", "command": ["python3", "-c", SERVER],
                                 "ports": [{"containerPort": 8080, "name": "http"}],
                                 "env": [{"name": "POD_NAME",
                                          "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}}}


def service(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "who"}, "ports": [{"port": 80, "targetPort": "http"}], **spec}}


SERVICES = [service("who"),
            service("who-np", type="NodePort",
                    ports=[{"port": 80, "targetPort": "http", "nodePort": NODE_PORT}]),
            service("who-sticky", sessionAffinity="ClientIP",
                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}})]

_wait = partial(eventually, timeout=60.0, interval=0.3)


def http_get(host: str, port: int) -> str:
    """One request on a fresh connection (so each is balanced anew); no proxies from the environment."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode()


def spread(host: str, port: int, count: int) -> Counter[str]:
    """Answers to ``count`` requests; a failed request counts as "error" (polls retry, asserts see it)."""
    seen: Counter[str] = Counter()
    for _ in range(count):
        try:
            seen[http_get(host, port)] += 1
        except OSError as err:
            seen[f"error: {err}"] += 1
    return seen


def get_json(c: Cluster, *args: str) -> Any:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def set_gate(c: Cluster, pod: str, ok: bool) -> None:
    patch = {"status": {"conditions": [{"type": GATE, "status": "True" if ok else "False"}]}}
    c.kubectl("patch", "pod", pod, "--subresource=status", "--type=strategic", "-p", json.dumps(patch))


def ready_ips(c: Cluster, svc: str) -> set[str]:
    found = set()
    for s in get_json(c, "endpointslices", "-l", f"kubernetes.io/service-name={svc}")["items"]:
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready"):
                found.update(ep["addresses"])
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, str]]]:
    os.environ["NANOKUBE_PROXY_TABLE"] = TABLE
    try:
        with native_cluster(tmp_path_factory.mktemp("services"), "--service-cidr", SERVICE_CIDR) as c:
            _wait(lambda: get_json(c, "nodes")["items"], "the node to register")
            c.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in [DEPLOYMENT, *SERVICES]))
            try:
                yield c, _ready_pods(c)
            finally:
                # Containers outlive the agent by design: remove the Pods before the cluster stops.
                c.kubectl("delete", "deployment", "who", "--wait=false", check=False)
                _wait(lambda: not get_json(c, "pods", "-l", "app=who")["items"], "the pods to go")
    finally:
        os.environ.pop("NANOKUBE_PROXY_TABLE", None)
    listed = subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True)
    assert listed.returncode != 0, "the proxy left its nftables table behind"


def _ready_pods(c: Cluster) -> dict[str, str]:
    """Wait for the Deployment's three Pods to run, put them in rotation, return their names and IPs."""
    def running() -> dict[str, str] | None:
        pods = [p for p in get_json(c, "pods", "-l", "app=who")["items"]
                if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
                and any(s.get("state", {}).get("running") for s in p["status"].get("containerStatuses", []))]
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods} if len(pods) == 3 else None

    pods: dict[str, str] = _wait(running, "three running pods")  # type: ignore[arg-type]
    for name in pods:
        set_gate(c, name, True)
    _wait(lambda: ready_ips(c, "who") == set(pods.values()), "three ready endpoints")
    return pods


def cluster_ip(c: Cluster, name: str) -> str:
    ip = get_json(c, "service", name)["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(SERVICE_CIDR)
    return str(ip)


def test_cluster_ip_reaches_all_replicas_evenly_from_the_host(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, pods = cluster
    ip = cluster_ip(c, "who")
    def balanced() -> Counter[str] | None:
        seen = spread(ip, 80, 300)
        return seen if set(seen) == set(pods) else None

    seen: Counter[str] = _wait(balanced, "all three replicas answering")  # type: ignore[arg-type]
    assert all(n >= 50 for n in seen.values()), seen  # 100 each expected; 50 is > 6 standard deviations off


def test_cluster_ip_from_inside_a_pod_includes_itself(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, pods = cluster
    ip = cluster_ip(c, "who")
    client = sorted(pods)[0]
    out = c.kubectl("exec", client, "--", "python3", "-c", CLIENT, ip, "80", "300").stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert set(seen) == set(pods), seen  # the client Pod reached itself too: hairpin works
    assert all(n >= 50 for n in seen.values()), seen


def test_node_port_answers_on_the_node_address(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, pods = cluster
    node = get_json(c, "nodes")["items"][0]
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert _wait(lambda: set(spread(address, NODE_PORT, 3)) <= set(pods), "the node port to answer")


def test_session_affinity_sticks(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, _ = cluster
    ip = cluster_ip(c, "who-sticky")
    first = _wait(lambda: next(iter(spread(ip, 80, 1))), "the sticky service to answer")
    assert set(spread(ip, 80, 30)) == {first} and not first.startswith("error")


def test_kubectl_expose_and_port_forward_svc(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, pods = cluster
    c.kubectl("expose", "deployment", "who", "--name", "who-exposed", "--port", "81", "--target-port", "8080")
    ip = cluster_ip(c, "who-exposed")
    assert _wait(lambda: set(spread(ip, 81, 60)) == set(pods), "the exposed service balancing over all replicas")
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(c.kubeconfig), "port-forward", "svc/who", ":80"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert http_get("127.0.0.1", int(match.group(1))) in pods
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_unready_pod_stops_receiving_traffic(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, pods = cluster
    ip = cluster_ip(c, "who")
    victim = sorted(pods)[-1]
    set_gate(c, victim, False)
    try:
        _wait(lambda: pods[victim] not in ready_ips(c, "who"), "the endpoint to turn unready")
        _wait(lambda: victim not in spread(ip, 80, 30), "traffic to leave the unready pod")
        assert set(spread(ip, 80, 100)) == set(pods) - {victim}
    finally:
        set_gate(c, victim, True)
    _wait(lambda: set(spread(ip, 80, 60)) == set(pods), "the pod to come back into rotation")


def test_a_service_without_endpoints_refuses(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, _ = cluster
    c.kubectl("create", "service", "clusterip", "nobody", "--tcp", "80:8080")
    ip = cluster_ip(c, "nobody")

    def refused() -> bool:
        try:
            http_get(ip, 80)
        except ConnectionRefusedError:
            return True
        return False

    assert _wait(refused, "a reject from the service without endpoints")



def test_kubectl_get_endpoints_and_endpointslices(cluster: tuple[Cluster, dict[str, str]]) -> None:
    c, pods = cluster
    both = c.kubectl("get", "endpoints,endpointslices").stdout
    lines = [line.split() for line in both.splitlines()]
    assert ["NAME", "ENDPOINTS", "AGE"] in lines and ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"] in lines
    endpoints = [f for f in lines if f and f[0] == "endpoints/who"]
    assert sorted(endpoints[0][1].split(",")) == sorted(f"{ip}:8080" for ip in pods.values()), both
    mine = c.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=who").stdout
    slices = [line.split() for line in mine.splitlines()[1:]]
    assert len(slices) == 1 and slices[0][0].startswith("who-") and slices[0][1:3] == ["IPv4", "8080"], mine
    assert sorted(slices[0][3].split(",")) == sorted(pods.values()), mine
