"""The docs' ``web`` StatefulSet (headless Service ``nginx``, a ``www`` claim per Pod) on simulated nodes, driven
by the real kubectl: it comes up in order with its claims, a deleted Pod comes back with the same claim, and
scaling down goes from the top and keeps the claims. Every blocking kubectl call carries its own ``--timeout``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .cluster import Cluster, unique

WEB = """
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: "nginx"
  replicas: 3
  minReadySeconds: 0
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      resources:
        requests:
          storage: 1Gi
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("nanokube-sts"))
    c.start("--sim-nodes", "2")
    yield c
    c.stop()


@pytest.fixture
def ns(sim: Cluster) -> Iterator[str]:
    name = unique("sts")
    sim.kubectl("create", "namespace", name)
    yield name
    sim.kubectl("delete", "namespace", name, "--wait=false", check=False)


def get_json(sim: Cluster, ns: str, *what: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(sim.kubectl("get", "-n", ns, *what, "-o", "json").stdout)
    return result


def names(sim: Cluster, ns: str, kind: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in get_json(sim, ns, kind)["items"])


def wait_until(probe: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def set_event_messages(sim: Cluster, ns: str) -> list[str]:
    items = get_json(sim, ns, "events", "--field-selector", "involvedObject.kind=StatefulSet")["items"]
    return [e["message"] for e in sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))]


def test_web_comes_up_in_order_with_a_claim_per_pod(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=WEB)
    out = sim.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=120s", timeout=130).stdout
    assert out.splitlines()[-1] == "partitioned roll out complete: 3 new pods have been updated..."
    assert names(sim, ns, "pods") == ["web-0", "web-1", "web-2"]
    assert names(sim, ns, "pvc") == ["www-web-0", "www-web-1", "www-web-2"]
    pvc_table = sim.kubectl("get", "pvc", "-n", ns).stdout
    assert [line.split()[0] for line in pvc_table.splitlines()[1:]] == ["www-web-0", "www-web-1", "www-web-2"]
    creates = [m for m in set_event_messages(sim, ns) if m.startswith("create Pod")]
    assert creates == [f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]
    sts = get_json(sim, ns, "sts", "web")
    assert sts["status"]["readyReplicas"] == 3 and sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    for i in range(3):
        pod = get_json(sim, ns, "pod", f"web-{i}")
        assert pod["spec"]["hostname"] == f"web-{i}" and pod["spec"]["subdomain"] == "nginx"
        claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "www")
        assert claim["persistentVolumeClaim"]["claimName"] == f"www-web-{i}"


def test_a_deleted_pod_comes_back_with_the_same_claim(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=WEB)
    sim.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=120s", timeout=130)
    old_pod = get_json(sim, ns, "pod", "web-1")["metadata"]["uid"]
    old_claim = get_json(sim, ns, "pvc", "www-web-1")["metadata"]["uid"]
    sim.kubectl("delete", "pod", "-n", ns, "web-1", "--timeout=60s", timeout=70)

    def replaced() -> bool:
        found = sim.kubectl("get", "pod", "-n", ns, "web-1", "-o", "jsonpath={.metadata.uid}", check=False)
        return found.returncode == 0 and found.stdout not in ("", old_pod)

    wait_until(replaced, "web-1 to come back")
    sim.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/web-1", "--timeout=60s", timeout=70)
    pod = get_json(sim, ns, "pod", "web-1")
    claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "www")
    assert claim["persistentVolumeClaim"]["claimName"] == "www-web-1"
    assert get_json(sim, ns, "pvc", "www-web-1")["metadata"]["uid"] == old_claim


def test_scale_down_goes_from_the_top_and_keeps_claims(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=WEB)
    sim.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=120s", timeout=130)
    sim.kubectl("scale", "-n", ns, "sts/web", "--replicas=1")
    wait_until(lambda: names(sim, ns, "pods") == ["web-0"], "scale down to web-0")
    deletes = [m for m in set_event_messages(sim, ns) if m.startswith("delete Pod")]
    assert deletes == ["delete Pod web-2 in StatefulSet web successful",
                       "delete Pod web-1 in StatefulSet web successful"]
    assert names(sim, ns, "pvc") == ["www-web-0", "www-web-1", "www-web-2"]


def test_set_image_rolls_from_the_highest_ordinal_and_undo_goes_back(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=WEB)
    sim.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=120s", timeout=130)
    first = get_json(sim, ns, "sts", "web")["status"]["currentRevision"]
    sim.kubectl("set", "image", "-n", ns, "sts/web", "nginx=registry.k8s.io/nginx-slim:0.27")
    out = sim.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=120s", timeout=130).stdout
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    deletes = [m for m in set_event_messages(sim, ns) if m.startswith("delete Pod")]
    assert deletes == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1, 0)]
    history = sim.kubectl("rollout", "history", "-n", ns, "sts/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    sim.kubectl("rollout", "undo", "-n", ns, "sts/web")
    sim.kubectl("rollout", "status", "-n", ns, "sts/web", "--timeout=120s", timeout=130)
    wait_until(lambda: get_json(sim, ns, "sts", "web")["status"].get("currentRevision") == first,
               "the first revision to be current again")
