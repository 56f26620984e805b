"""DaemonSets with the real kubectl on simulated nodes: a pod on every node (a node added later included),
``rollout status`` after ``set image``, ``rollout history`` and ``undo``, node selectors and the default daemon
tolerations as kubectl shows them.

These need the scheduler and the DaemonSet controller running inside ``nanokube up --sim-nodes``: the
controller creates pods pinned to their node by affinity, the scheduler binds them, the simulated kubelets run
them. A node added later is a Node object with the ``sim.nanokube.io/node: "true"`` annotation, which the
simulator adopts and heartbeats. Every ``rollout status`` carries its own ``--timeout``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from .cluster import Cluster, eventually, unique

STATUS_TIMEOUT = "--timeout=90s"
SIM_NODES = 3


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("nanokube-ds"))
    c.start("--sim-nodes", str(SIM_NODES))
    yield c
    c.stop()


@pytest.fixture
def ns(sim_cluster: Cluster) -> Iterator[str]:
    name = unique("ds")
    sim_cluster.kubectl("create", "namespace", name)
    yield name
    sim_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


_eventually = partial(eventually, timeout=60.0, interval=0.2)


def _manifest(name: str, image: str = "agent:1", node_selector: dict[str, str] | None = None) -> str:
    spec: dict = {"containers": [{"name": "agent", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return json.dumps({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                       "spec": {"selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})


def _json(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _nodes(cluster: Cluster) -> set[str]:
    return {n["metadata"]["name"] for n in _json(cluster, "nodes")["items"]}


def _pods(cluster: Cluster, ns: str, app: str) -> list[dict]:
    items = _json(cluster, "-n", ns, "pods", "-l", f"app={app}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _running_on(cluster: Cluster, ns: str, app: str) -> dict[str, dict]:
    """Running pods by the node they are bound to."""
    return {p["spec"]["nodeName"]: p for p in _pods(cluster, ns, app)
            if p["spec"].get("nodeName") and p.get("status", {}).get("phase") == "Running"}


def _rollout_status(cluster: Cluster, ns: str, name: str) -> str:
    return cluster.kubectl("-n", ns, "rollout", "status", f"daemonset/{name}", STATUS_TIMEOUT).stdout


def _history(cluster: Cluster, ns: str, name: str) -> list[str]:
    out = cluster.kubectl("-n", ns, "rollout", "history", f"daemonset/{name}").stdout
    # daemonset.apps/NAME
    # REVISION  CHANGE-CAUSE
    # 1         <none>
    return [line.split()[0] for line in out.strip().splitlines()[2:] if line.strip()]


def test_daemonset_lands_on_every_node_and_on_a_node_added_later(sim_cluster: Cluster, ns: str,
                                                                 tmp_path: Path) -> None:
    out = sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=_manifest("agent")).stdout
    assert out.strip() == "daemonset.apps/agent created"
    assert _rollout_status(sim_cluster, ns, "agent").strip().endswith('daemon set "agent" successfully rolled out')
    nodes = _nodes(sim_cluster)
    assert len(nodes) >= SIM_NODES
    assert set(_running_on(sim_cluster, ns, "agent")) == nodes
    row = sim_cluster.kubectl("-n", ns, "get", "daemonset", "agent", "--no-headers").stdout.split()
    count = str(len(nodes))
    assert row[:6] == ["agent", count, count, count, count, count]  # desired current ready up-to-date available
    tolerations = _pods(sim_cluster, ns, "agent")[0]["spec"]["tolerations"]
    keys = {(t["key"], t["effect"]) for t in tolerations if "tolerationSeconds" not in t}
    assert {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unschedulable", "NoSchedule")} <= keys

    late = unique("late-node")
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": late, "annotations": {"sim.nanokube.io/node": "true"}}}
    sim_cluster.kubectl("apply", "-f", "-", input=json.dumps(node))
    try:
        _eventually(lambda: late in _running_on(sim_cluster, ns, "agent"), "a daemon pod on the node added later")
        assert _rollout_status(sim_cluster, ns, "agent").strip().endswith("successfully rolled out")
        status = _json(sim_cluster, "-n", ns, "daemonset", "agent")["status"]
        assert status["desiredNumberScheduled"] == status["numberAvailable"] == len(nodes) + 1
    finally:
        sim_cluster.kubectl("delete", "node", late, "--wait=false", check=False)


def test_set_image_rolls_out_and_undo_goes_back(sim_cluster: Cluster, ns: str) -> None:
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=_manifest("roll"))
    _rollout_status(sim_cluster, ns, "roll")
    assert _history(sim_cluster, ns, "roll") == ["1"]
    sim_cluster.kubectl("-n", ns, "set", "image", "daemonset/roll", "agent=agent:2")
    out = _rollout_status(sim_cluster, ns, "roll")
    assert out.strip().endswith('daemon set "roll" successfully rolled out')
    images = {p["spec"]["containers"][0]["image"] for p in _pods(sim_cluster, ns, "roll")}
    assert images == {"agent:2"}
    assert len(_running_on(sim_cluster, ns, "roll")) == len(_nodes(sim_cluster))
    assert _history(sim_cluster, ns, "roll") == ["1", "2"]
    revision = sim_cluster.kubectl("-n", ns, "rollout", "history", "daemonset/roll", "--revision=1").stdout
    assert "agent:1" in revision

    out = sim_cluster.kubectl("-n", ns, "rollout", "undo", "daemonset/roll").stdout
    assert out.strip() == "daemonset.apps/roll rolled back"
    _rollout_status(sim_cluster, ns, "roll")
    _eventually(lambda: {p["spec"]["containers"][0]["image"] for p in _pods(sim_cluster, ns, "roll")}
                == {"agent:1"}, "pods back on the first image")
    assert _history(sim_cluster, ns, "roll") == ["2", "3"]


def test_node_selector_follows_node_labels(sim_cluster: Cluster, ns: str) -> None:
    target = sorted(_nodes(sim_cluster))[0]
    label = unique("edge")
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=_manifest("edge", node_selector={"role": label}))
    _rollout_status(sim_cluster, ns, "edge")
    assert _pods(sim_cluster, ns, "edge") == []
    sim_cluster.kubectl("label", "node", target, f"role={label}")
    try:
        _eventually(lambda: set(_running_on(sim_cluster, ns, "edge")) == {target}, "a pod on the labelled node")
    finally:
        sim_cluster.kubectl("label", "node", target, "role-")
    _eventually(lambda: _pods(sim_cluster, ns, "edge") == [], "the pod gone once the label is")
