"""The scheduler on simulated nodes, seen through kubectl: placement by resources, selectors and taints,
and Kubernetes' FailedScheduling wording for Pods that cannot be placed."""

from __future__ import annotations

import json
from functools import partial

from .cluster import Cluster, eventually


def _pod(name: str, **spec: object) -> str:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    return json.dumps(body)


_wait = partial(eventually, timeout=30.0, interval=0.2)


def _get(cluster: Cluster, namespace: str, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl("-n", namespace, "get", "pod", name, "-o", "json").stdout)


def test_unschedulable_pod_gets_kubes_message(cluster: Cluster, namespace: str) -> None:
    big = _pod("big", containers=[{"name": "c", "image": "busybox",
                                   "resources": {"requests": {"cpu": "1000"}}}])
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=big)
    picky = _pod("picky", nodeSelector={"disktype": "ssd"})
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=picky)

    def failed(name: str) -> str:
        out = cluster.kubectl("-n", namespace, "get", "events", "--field-selector",
                              f"involvedObject.name={name},reason=FailedScheduling", "-o", "json").stdout
        items = json.loads(out)["items"]
        return items[0]["message"] if items else ""

    message = _wait(lambda: failed("big"), "a FailedScheduling event for big")
    assert message.startswith("0/3 nodes are available: 3 Insufficient cpu.")
    message = _wait(lambda: failed("picky"), "a FailedScheduling event for picky")
    assert message.startswith("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
    pod = _get(cluster, namespace, "big")
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["status"] == "False" and condition["reason"] == "Unschedulable"
    out = cluster.kubectl("-n", namespace, "get", "pods").stdout
    assert "Pending" in out


def test_selector_and_taints_steer_placement(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "node", "sim-node-2", f"zone-{namespace}=b", "--overwrite")
    cluster.kubectl("taint", "node", "sim-node-1", f"{namespace}=only:NoSchedule", "--overwrite")
    try:
        cluster.kubectl("-n", namespace, "create", "-f", "-",
                        input=_pod("pinned", nodeSelector={f"zone-{namespace}": "b"}))
        tolerating = _pod("tolerating", tolerations=[{"key": namespace, "operator": "Equal", "value": "only",
                                                      "effect": "NoSchedule"}],
                          nodeSelector={"kubernetes.io/hostname": "sim-node-1"})
        cluster.kubectl("-n", namespace, "create", "-f", "-", input=tolerating)
        intolerant = _pod("intolerant", nodeSelector={"kubernetes.io/hostname": "sim-node-1"})
        cluster.kubectl("-n", namespace, "create", "-f", "-", input=intolerant)
        assert _wait(lambda: _get(cluster, namespace, "pinned")["spec"].get("nodeName"), "pinned bound") == \
            "sim-node-2"
        assert _wait(lambda: _get(cluster, namespace, "tolerating")["spec"].get("nodeName"),
                     "tolerating bound") == "sim-node-1"

        def refused() -> str:
            out = cluster.kubectl("-n", namespace, "get", "events", "--field-selector",
                                  "involvedObject.name=intolerant,reason=FailedScheduling", "-o", "json").stdout
            items = json.loads(out)["items"]
            return items[0]["message"] if items else ""

        message = _wait(refused, "intolerant refused")
        assert "1 node(s) had untolerated taint(s)" in message  # 1.37's wording
        assert "2 node(s) didn't match Pod's node affinity/selector" in message
        _wait(lambda: _get(cluster, namespace, "pinned")["status"]["phase"] == "Running", "pinned running")
    finally:
        cluster.kubectl("label", "node", "sim-node-2", f"zone-{namespace}-", check=False)
        cluster.kubectl("taint", "node", "sim-node-1", f"{namespace}=only:NoSchedule-", check=False)
