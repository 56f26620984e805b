"""A real container's environment and volumes: values from a ConfigMap and the downward API, a configMap volume.

Runs `nanokube up --node native` as test_native_node does (root, runc, CNI; fails, not skips, without them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from .cluster import Cluster, eventually, native_cluster

CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: greet}
data: {GREETING: hello-from-configmap, k: file-from-volume}
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: envy}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: nanokube.io/host
    command: [sh, -c, 'echo $GREETING $POD_NAME; cat /config/k']
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: %(configmap)s, key: GREETING}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    volumeMounts:
    - {name: cfg, mountPath: /config}
  volumes:
  - name: cfg
    configMap: {name: greet}
"""


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with native_cluster(tmp_path_factory.mktemp("native-env")) as c:
        yield c


_wait = partial(eventually, timeout=60.0, interval=0.3)


def _status(c: Cluster, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)["status"]  # type: ignore[no-any-return]


def test_env_and_configmap_volume_reach_a_real_container(node_cluster: Cluster) -> None:
    c = node_cluster
    _wait(lambda: json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"], "the node to register")
    c.kubectl("apply", "-f", "-", input=POD % {"configmap": "absent"})

    def config_error() -> dict | None:  # type: ignore[type-arg]
        statuses = _status(c, "envy").get("containerStatuses") or []
        waiting = statuses[0]["state"].get("waiting") if statuses else None
        return waiting if waiting and waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = _wait(config_error, "CreateContainerConfigError for the missing ConfigMap")
    assert waiting["message"] == 'configmap "absent" not found'
    c.kubectl("delete", "pod", "envy", "--timeout=60s")

    c.kubectl("apply", "-f", "-", input=CONFIG)
    c.kubectl("apply", "-f", "-", input=POD % {"configmap": "greet"})
    _wait(lambda: _status(c, "envy").get("phase") == "Succeeded", "the pod to succeed")
    logs = c.kubectl("logs", "envy").stdout.splitlines()
    assert logs == ["hello-from-configmap envy", "file-from-volume"]
    c.kubectl("delete", "pod", "envy", "--timeout=60s")
    c.kubectl("delete", "configmap", "greet")
    pods_dir = c.data_dir / "node" / "pods"
    _wait(lambda: not pods_dir.exists() or not any(pods_dir.iterdir()), "the pod's volume directory to go",
          timeout=30)
    assert str(c.data_dir) not in Path("/proc/mounts").read_text()
