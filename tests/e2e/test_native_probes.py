"""Probes and lifecycle hooks on the real node, through the real kubectl: a failing liveness probe restarts a
container, an httpGet readiness probe against python's http.server takes a Pod in and out of Ready (and its
Service's endpoint with it), a startup probe holds readiness back until it passes, and postStart and preStop
hooks run in the container (preStop while its main process still lives) before it is stopped.

Runs `nanokube up --node native` as test_native_node does (root, runc, CNI; fails, not skips, without them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster, eventually, native_cluster

LIVE = """
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: nanokube.io/host
    command: [sleep, "3600"]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 1
      terminationGracePeriodSeconds: 1
"""

WEB = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: probed-web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: probed-web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: nanokube.io/host
    command: [sh, -c, "mkdir -p /w && cd /w && exec python3 -m http.server 8080"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: http, httpHeaders: [{name: X-Probe, value: e2e}]}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      initialDelaySeconds: 2
      periodSeconds: 1
"""

SLOW_START = """
apiVersion: v1
kind: Pod
metadata: {name: slow-start}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: nanokube.io/host
    command: [sleep, "3600"]
    startupProbe:
      exec: {command: [test, -f, /tmp/started]}
      periodSeconds: 1
      failureThreshold: 60
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
"""

HOOKED = """
apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: main
    image: nanokube.io/host
    command: [sleep, "3600"]
    lifecycle:
      postStart:
        exec: {command: [sh, -c, "echo started > /out/poststart"]}
      preStop:
        exec: {command: [sh, -c, "kill -0 1 && echo main-alive > /out/prestop"]}
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - name: out
    hostPath: {path: %(out)s, type: DirectoryOrCreate}
"""


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with native_cluster(tmp_path_factory.mktemp("native-probes")) as c:
        _wait(lambda: json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"], "the node to register")
        try:
            yield c
        finally:  # a stopped node leaves its containers running: remove them first, even after a failure
            c.kubectl("delete", "pods", "--all", "--timeout=60s", check=False)
            node = c.data_dir / "node"
            _wait(lambda: not any((node / "sandboxes").glob("*")) and not any((node / "containers").glob("*")),
                  "the node's sandboxes and containers to be removed")


_wait = partial(eventually, timeout=60.0, interval=0.3)


def _pod(c: Cluster, name: str) -> dict[str, Any]:
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)  # type: ignore[no-any-return]


def _events(c: Cluster, name: str, reason: str) -> list[str]:
    items = json.loads(c.kubectl("get", "events", "-o", "json").stdout)["items"]
    return [e["message"] for e in items if e["involvedObject"].get("name") == name and e["reason"] == reason]


def _ready_column(c: Cluster, name: str) -> str:
    return c.kubectl("get", "pod", name, "--no-headers").stdout.split()[1]


def _ready_condition(c: Cluster, name: str) -> str:
    conditions = _pod(c, name)["status"].get("conditions") or []
    return next((x["status"] for x in conditions if x["type"] == "Ready"), "")


def test_a_failing_liveness_probe_restarts_the_container(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=LIVE)
    status = _wait(lambda: (s := _pod(c, "live")["status"].get("containerStatuses")) and s[0]["restartCount"] >= 1
                   and s[0], "the container restarted after failing its liveness probe")
    assert status["lastState"]["terminated"]["exitCode"] == 137  # sleep ignores SIGTERM: killed after 1 s
    unhealthy = _wait(lambda: _events(c, "live", "Unhealthy"), "an Unhealthy event")
    assert unhealthy[0] == "Liveness probe failed: cat: /tmp/healthy: No such file or directory\n"
    assert _events(c, "live", "Killing") == ["Container main failed liveness probe, will be restarted"]
    c.kubectl("delete", "pod", "live", "--timeout=60s")


def test_an_http_readiness_probe_takes_the_pod_in_and_out_of_ready(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=WEB)
    _wait(lambda: _pod(c, "web")["status"].get("phase") == "Running", "web Running")
    failed = "Readiness probe failed: HTTP probe failed with statuscode: 404"  # (before: connection refused)
    try:
        _wait(lambda: failed in _events(c, "web", "Unhealthy"), "the readiness probe failing on 404")
    except AssertionError as err:
        raise AssertionError(f"{err}; events: {_events(c, 'web', 'Unhealthy')}") from None
    assert _ready_column(c, "web") == "0/1" and _ready_condition(c, "web") == "False"
    ip = _pod(c, "web")["status"]["podIP"]
    _wait(lambda: _endpoints(c) == ([], [ip]), "the Service's endpoint listed as not ready")
    c.kubectl("exec", "web", "--", "touch", "/w/ready")
    _wait(lambda: _ready_column(c, "web") == "1/1", "READY 1/1 once /ready answers 200")
    assert _ready_condition(c, "web") == "True"
    _wait(lambda: _endpoints(c) == ([ip], []), "the Service's endpoint ready")
    c.kubectl("exec", "web", "--", "rm", "/w/ready")
    _wait(lambda: _ready_column(c, "web") == "0/1", "READY 0/1 again once /ready is gone")
    status = _pod(c, "web")["status"]
    assert status["containerStatuses"][0]["restartCount"] == 0  # the tcpSocket liveness probe passes
    c.kubectl("delete", "pod", "web", "--timeout=60s")
    c.kubectl("delete", "service", "web")


def _endpoints(c: Cluster) -> tuple[list[str], list[str]]:
    """(ready, not ready) addresses of the ``web`` Service's Endpoints."""
    subsets = json.loads(c.kubectl("get", "endpoints", "web", "-o", "json").stdout).get("subsets") or []
    ready = [a["ip"] for s in subsets for a in s.get("addresses") or []]
    return ready, [a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []]


def test_a_startup_probe_holds_readiness_back_until_it_passes(node_cluster: Cluster) -> None:
    c = node_cluster
    c.kubectl("apply", "-f", "-", input=SLOW_START)
    _wait(lambda: "Startup probe failed: " in _events(c, "slow-start", "Unhealthy"), "the startup probe failing")
    status = _pod(c, "slow-start")["status"]["containerStatuses"][0]
    assert "running" in status["state"] and status["started"] is False and status["ready"] is False
    c.kubectl("exec", "slow-start", "--", "touch", "/tmp/started")
    _wait(lambda: _ready_column(c, "slow-start") == "1/1", "READY 1/1 once started and probed ready")
    status = _pod(c, "slow-start")["status"]["containerStatuses"][0]
    assert status["started"] is True and status["restartCount"] == 0
    c.kubectl("delete", "pod", "slow-start", "--timeout=60s")


def test_post_start_and_pre_stop_hooks_run_in_the_container(node_cluster: Cluster, tmp_path: Path) -> None:
    c = node_cluster
    out = tmp_path / "hooks"
    c.kubectl("apply", "-f", "-", input=HOOKED % {"out": out})
    _wait(lambda: _pod(c, "hooked")["status"].get("phase") == "Running", "hooked Running")
    assert (out / "poststart").read_text() == "started\n"
    assert not (out / "prestop").exists()
    c.kubectl("delete", "pod", "hooked", "--timeout=60s")
    assert (out / "prestop").read_text() == "main-alive\n"  # ran while the main process still lived
