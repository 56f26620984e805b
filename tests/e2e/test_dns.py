"""Cluster DNS on a real node: a Pod looks up a Service, and the docs' StatefulSet ``web`` with its headless
Service ``nginx`` resolves ``web-0.nginx`` to the current Pod IP before and after the Pod is recreated.

Runs `nanokube up --node native` (root, runc, CNI, nft; fails, not skips, without them). The DNS server listens
on the pod bridge's gateway, port 53. Pods ask it directly (busybox nslookup) and the usual way (glibc through
their resolv.conf: 10.43.0.10, the search list, ndots:5, carried to the server by the proxy); the host asks
it directly with dig.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from .cluster import NATIVE_POD_CIDR, Cluster, eventually, native_cluster

GATEWAY = str(ipaddress.ip_network(NATIVE_POD_CIDR, strict=False).network_address + 1)
ZONE = "cluster.local"
TABLE = f"nkdns{os.getpid()}"

WEB = """
apiVersion: v1
kind: Service
metadata: {name: nginx, labels: {app: nginx}}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  ports: [{port: 80, name: http}]
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 1
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: nanokube.io/host
        command: [sleep, "3600"]
        ports: [{containerPort: 80, name: web}]
"""

LOOKUP = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: nanokube.io/host
    command: [sh, -c, 'for n in %(names)s; do busybox nslookup $n %(server)s || exit 1; done;
              for n in %(short)s; do getent hosts $n || exit 1; done']
"""

_wait = partial(eventually, timeout=60.0, interval=0.3)


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    assert shutil.which("dig"), "dig is missing: install the Debian package bind9-dnsutils (make test does)"
    os.environ["NANOKUBE_PROXY_TABLE"] = TABLE  # the proxy carries 10.43.0.10 to us; its own table for this run
    try:
        with native_cluster(tmp_path_factory.mktemp("native-dns")) as c:
            try:
                yield c
            finally:  # containers outlive the node process: remove them before it stops, pass or fail
                c.kubectl("delete", "statefulset,pods", "--all", "--timeout=60s", check=False)
                eventually(lambda: not _get(c, "pods")["items"], "every pod to be removed", timeout=60.0)
    finally:
        os.environ.pop("NANOKUBE_PROXY_TABLE", None)


def _get(c: Cluster, *what: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(c.kubectl("get", *what, "-o", "json").stdout)
    return got


def _dig(*args: str) -> list[str]:
    out = subprocess.run(["dig", f"@{GATEWAY}", "+time=1", "+tries=1", "+short", *args], capture_output=True,
                         text=True, timeout=10).stdout
    return out.split()


def _ready_ip(c: Cluster, name: str, not_ip: str = "") -> str | None:
    pod = _get(c, "pod", name)
    status = pod.get("status") or {}
    ready = any(x["type"] == "Ready" and x["status"] == "True" for x in status.get("conditions") or [])
    ip = status.get("podIP")
    return ip if ready and ip and ip != not_ip and not pod["metadata"].get("deletionTimestamp") else None


def _hosts(logs: str) -> dict[str, str]:
    """getent's lines (address, then the canonical name) as name -> address."""
    found = {}
    for line in logs.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].endswith(f".{ZONE}") and fields[0][0].isdigit():
            found[fields[1]] = fields[0]
    return found


def _lookup_from_a_pod(c: Cluster, name: str, names: list[str], short: list[str]) -> str:
    """Run a Pod that asks the server directly (busybox nslookup) for ``names``, then resolves ``short`` the
    usual way: glibc, the Pod's resolv.conf (10.43.0.10, search list, ndots:5), the proxy's DNAT to us."""
    c.kubectl("apply", "-f", "-", input=LOOKUP % {"name": name, "names": " ".join(names), "server": GATEWAY,
                                                  "short": " ".join(short)})
    phase = _wait(lambda: _get(c, "pod", name).get("status", {}).get("phase") in ("Succeeded", "Failed")
                  and _get(c, "pod", name)["status"]["phase"], f"the lookup pod {name} to finish")
    logs = c.kubectl("logs", name).stdout
    assert phase == "Succeeded", logs
    c.kubectl("delete", "pod", name, "--timeout=60s")
    return logs


def test_pods_resolve_services_and_statefulset_pods(node_cluster: Cluster) -> None:
    c = node_cluster
    _wait(lambda: _get(c, "nodes")["items"], "the node to register")
    dns = _wait(lambda: _get(c, "endpointslices", "-n", "kube-system", "-l",
                             "kubernetes.io/service-name=kube-dns")["items"], "the kube-dns endpoints")
    assert dns[0]["endpoints"][0]["addresses"] == [GATEWAY]
    assert _get(c, "service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"] == "10.43.0.10"
    assert _wait(lambda: _dig(f"kubernetes.default.svc.{ZONE}"), "an answer from the host") == ["10.43.0.1"]

    c.kubectl("apply", "-f", "-", input=WEB)
    first = _wait(lambda: _ready_ip(c, "web-0"), "web-0 to be ready")
    assert first is not None
    front = _get(c, "service", "front")["spec"]["clusterIP"]
    web0 = f"web-0.nginx.default.svc.{ZONE}"
    assert _wait(lambda: _dig(web0) == [first], "web-0 in DNS")
    logs = _lookup_from_a_pod(c, "lookup-1", [f"front.default.svc.{ZONE}", web0], ["front", "web-0.nginx"])
    assert f"Address: {front}" in logs and f"Address: {first}" in logs, logs
    assert _hosts(logs) == {f"front.default.svc.{ZONE}": front, web0: first}, logs
    # The searched forms an ndots:5 resolver tries first are NXDOMAIN.
    searched = subprocess.run(["dig", f"@{GATEWAY}", "+time=1", "+tries=1", f"{web0}.default.svc.{ZONE}"],
                              capture_output=True, text=True, timeout=10).stdout
    assert "status: NXDOMAIN" in searched

    c.kubectl("delete", "pod", "web-0", "--timeout=60s")
    second = _wait(lambda: _ready_ip(c, "web-0", not_ip=first), "web-0 to come back with a new IP")
    assert _wait(lambda: _dig(web0) == [second], "web-0's new IP in DNS")
    logs = _lookup_from_a_pod(c, "lookup-2", [web0], ["web-0.nginx"])
    assert f"Address: {second}" in logs and f"Address: {first}" not in logs, logs
    assert _hosts(logs) == {web0: second}, logs
