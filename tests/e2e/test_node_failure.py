"""A simulated node dies: it turns NotReady, its Pods are evicted, and their controllers bring them back on
the other nodes; a StatefulSet never has two Pods of one name at once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from kubernetes import client, watch

from .cluster import Cluster, eventually

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: postgres}]
"""


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("drill"))
    c.start("--sim-nodes", "3", "--fast-failover")
    yield c
    c.stop()


def _pods(cluster: Cluster, selector: str) -> list[dict]:  # type: ignore[type-arg]
    out = cluster.kubectl("get", "pods", "-l", selector, "-o", "json").stdout
    return json.loads(out)["items"]  # type: ignore[no-any-return]


_wait = partial(eventually, timeout=90.0, interval=0.5)


def _running_ready(pods: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def test_a_stopped_node_loses_its_pods_to_the_others(drill: Cluster, tmp_path: Path) -> None:
    drill.kubectl("apply", "-f", "-", input=MANIFESTS)
    drill.kubectl("rollout", "status", "deploy/web", "--timeout=60s")
    drill.kubectl("rollout", "status", "sts/db", "--timeout=60s")
    victim = _running_ready(_pods(drill, "app=db"))[0]["spec"]["nodeName"]

    # Record every StatefulSet pod incarnation: a name must never have two live uids at once.
    twins: list[str] = []
    live: dict[str, str] = {}
    stop = threading.Event()

    def follow() -> None:
        try:
            _follow()
        except Exception:  # the stream ends when the test is over; what it saw is in ``twins``
            pass

    def _follow() -> None:
        with drill.api_client() as api:
            core = client.CoreV1Api(api)
            w = watch.Watch()
            for event in w.stream(core.list_namespaced_pod, "default", label_selector="app=db",
                                  timeout_seconds=120):
                pod = event["object"]
                name, uid = pod.metadata.name, pod.metadata.uid
                if event["type"] == "DELETED":
                    if live.get(name) == uid:
                        del live[name]
                elif live.setdefault(name, uid) != uid:
                    twins.append(f"{name}: {live[name]} and {uid}")
                if stop.is_set():
                    w.stop()

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    time.sleep(0.5)
    result = subprocess.run([sys.executable, "-m", "nanokube.cmd.main", "sim", "node", "stop", victim,
                             "--data-dir", str(drill.data_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    def node_unknown() -> bool:
        node = json.loads(drill.kubectl("get", "node", victim, "-o", "json").stdout)
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        taints = {t["key"] for t in node["spec"].get("taints", [])}
        return ready["status"] == "Unknown" and "node.kubernetes.io/unreachable" in taints

    _wait(node_unknown, f"{victim} to be marked unreachable")

    def moved(selector: str, count: int) -> bool:
        pods = _running_ready(_pods(drill, selector))
        return len(pods) == count and all(p["spec"]["nodeName"] != victim for p in pods)

    _wait(lambda: moved("app=web", 6), "the Deployment's pods on the surviving nodes")
    _wait(lambda: moved("app=db", 3), "the StatefulSet's pods on the surviving nodes")
    names = sorted(p["metadata"]["name"] for p in _pods(drill, "app=db"))
    assert names == ["db-0", "db-1", "db-2"]
    stop.set()
    assert not twins, twins
    out = drill.kubectl("get", "nodes").stdout
    assert f"{victim}   NotReady" in out
