"""`nanokube up` as root runs the local node with real containers: runc, a CNI pod network, the host image.

Needs what `make test` installs as root (runc, containernetworking-plugins); fails, not skips, without it."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from .cluster import NATIVE_POD_CIDR, Cluster, eventually, native_cluster

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: nanokube.io/host
    command: [python3, -c, "import http.server as h, signal, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); h.test(h.SimpleHTTPRequestHandler, port=8080, bind='0.0.0.0')"]
  - name: sidecar
    image: nanokube.io/host
    command: [python3, -c, "import time, urllib.request as u; time.sleep(1); print(u.urlopen('http://127.0.0.1:8080/').status, flush=True); time.sleep(3600)"]
"""


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with native_cluster(tmp_path_factory.mktemp("native")) as c:
        yield c


_wait = partial(eventually, timeout=60.0, interval=0.3)


def _pod(cluster: Cluster, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl("get", "pod", name, "-o", "json").stdout)  # type: ignore[no-any-return]


def test_a_real_pod_serves_at_its_own_ip(node_cluster: Cluster) -> None:
    c = node_cluster
    nodes = _wait(lambda: json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"], "the node to register")
    assert len(nodes) == 1 and nodes[0]["status"]["nodeInfo"]["containerRuntimeVersion"] == "native://runc"
    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web"})
    c.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    first_ip = _pod(c, "web")["status"]["podIP"]
    assert ipaddress.ip_address(first_ip) in ipaddress.ip_network(NATIVE_POD_CIDR)
    body = urllib.request.urlopen(f"http://{first_ip}:8080/", timeout=10).read()
    assert b"Directory listing" in body
    # The sidecar reached the web server over the Pod's shared localhost.
    _wait(lambda: "200" in c.kubectl("logs", "web", "-c", "sidecar").stdout, "the sidecar's request")
    result = c.kubectl("exec", "web", "-c", "web", "--", "sh", "-c", "echo inside; exit 3", check=False)
    assert result.returncode == 3 and "inside" in result.stdout
    c.kubectl("delete", "pod", "web", "--timeout=60s")
    c.kubectl("apply", "-f", "-", input=WEB % {"name": "web"})
    c.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    second_ip = _pod(c, "web")["status"]["podIP"]
    assert second_ip != first_ip  # a replacement Pod gets a new IP
    c.kubectl("delete", "pod", "web", "--timeout=60s")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    _wait(lambda: "nk-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout,
          f"the pod network namespaces to go (now: {netns}; links: {links})", timeout=20)
    sandboxes = c.data_dir / "node" / "sandboxes"
    _wait(lambda: not sandboxes.exists() or not any(sandboxes.iterdir()), "the pod sandboxes to be removed",
          timeout=30)
    assert str(c.data_dir) not in Path("/proc/mounts").read_text()
