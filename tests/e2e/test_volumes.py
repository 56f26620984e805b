"""Storage and disruption budgets with the real kubectl.

The default StorageClass as nanokube ships it (k3s's ``local-path``) prints as ``local-path (default)``. The
rest needs components running inside ``nanokube up``: the volume controllers (binder, local-path provisioner,
protection) and the disruption controller for everything here, plus the scheduler and simulated nodes for a
Pod to use a claim and for ``kubectl drain``. Those tests are skipped until that wiring lands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import pytest

from nanokube.controllers.volumes import VolumeSettings, default_storage_class

from .cluster import Cluster, eventually, unique

SIM_NODES = 2




_eventually = partial(eventually, timeout=60.0, interval=0.2)


def _json(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _class_row(cluster: Cluster) -> list[str]:
    out = cluster.kubectl("get", "storageclass").stdout.splitlines()
    assert out[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION",
                              "AGE"]
    rows = [line.split() for line in out[1:] if line.startswith("local-path ")]
    assert len(rows) == 1, out
    return rows[0]


def test_the_shipped_default_class_prints_as_default(cluster: Cluster) -> None:
    """The object ensure_default_storage_class creates is accepted as is and kubectl marks it default."""
    manifest = json.dumps(default_storage_class(VolumeSettings()))
    cluster.kubectl("apply", "-f", "-", input=manifest)
    row = _class_row(cluster)
    assert row[:6] == ["local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", "false"]


def test_nanokube_up_has_the_default_class(cluster: Cluster) -> None:
    _eventually(lambda: "local-path" in cluster.kubectl("get", "storageclass").stdout, "the default class")
    assert _class_row(cluster)[:3] == ["local-path", "(default)", "rancher.io/local-path"]


def test_a_claim_waits_for_its_first_consumer(cluster: Cluster, namespace: str) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(claim))
    _eventually(lambda: _json(cluster, "-n", namespace, "pvc", "data")["spec"].get("storageClassName")
                == "local-path", "the default class on the claim")
    _eventually(lambda: "waiting for first consumer to be created before binding"
                in cluster.kubectl("-n", namespace, "describe", "pvc", "data").stdout, "the WaitForFirstConsumer event")
    row = cluster.kubectl("-n", namespace, "get", "pvc", "data", "--no-headers").stdout.split()
    assert row[:2] == ["data", "Pending"]


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("nanokube-volumes"))
    c.start("--sim-nodes", str(SIM_NODES))
    yield c
    c.stop()


@pytest.fixture
def ns(sim_cluster: Cluster) -> Iterator[str]:
    name = unique("vol")
    sim_cluster.kubectl("create", "namespace", name)
    yield name
    sim_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_pod_gets_a_local_path_volume_on_its_node(sim_cluster: Cluster, ns: str) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
           "spec": {"containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(claim))
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(pod))
    sim_cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/user", "--timeout=60s")
    pvc = _json(sim_cluster, "-n", ns, "pvc", "data")
    volume = pvc["spec"]["volumeName"]
    assert volume == f"pvc-{pvc['metadata']['uid']}"
    row = sim_cluster.kubectl("-n", ns, "get", "pvc", "data", "--no-headers").stdout.split()
    assert row[:6] == ["data", "Bound", volume, "2Gi", "RWO", "local-path"]
    pv = _json(sim_cluster, "pv", volume)
    node = _json(sim_cluster, "-n", ns, "pod", "user")["spec"]["nodeName"]
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    hostname = _json(sim_cluster, "node", node)["metadata"].get("labels", {}).get("kubernetes.io/hostname", node)
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": [hostname]}
    assert pv["spec"]["hostPath"]["path"].endswith(f"/{volume}_{ns}_data")
    events = sim_cluster.kubectl("-n", ns, "describe", "pvc", "data").stdout
    assert f"Successfully provisioned volume {volume}" in events

    # The claim outlives a deletion request while its pod runs, then takes the volume with it.
    sim_cluster.kubectl("-n", ns, "delete", "pvc", "data", "--wait=false")
    assert _json(sim_cluster, "-n", ns, "pvc", "data")["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    sim_cluster.kubectl("-n", ns, "delete", "pod", "user", "--timeout=60s")
    _eventually(lambda: sim_cluster.kubectl("get", "pv", volume, check=False).returncode != 0, "the volume deleted")


def test_drain_is_held_back_by_a_disruption_budget(sim_cluster: Cluster, ns: str) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "web:1"}]}}}}
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
              "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(deployment))
    sim_cluster.kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    sim_cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(budget))
    _eventually(lambda: _json(sim_cluster, "-n", ns, "pdb", "web").get("status", {}).get("currentHealthy") == 2,
                "the budget's status")
    row = sim_cluster.kubectl("-n", ns, "get", "pdb", "web", "--no-headers").stdout.split()
    assert row[:4] == ["web", "2", "N/A", "0"]  # name, min available, max unavailable, allowed disruptions
    node = _json(sim_cluster, "-n", ns, "pods", "-l", "app=web")["items"][0]["spec"]["nodeName"]
    try:
        refused = sim_cluster.kubectl("drain", node, "--ignore-daemonsets", "--pod-selector=app=web",
                                      "--timeout=5s", check=False)
        assert refused.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stdout + refused.stderr

        sim_cluster.kubectl("-n", ns, "patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
        _eventually(lambda: _json(sim_cluster, "-n", ns, "pdb", "web")["status"].get("disruptionsAllowed") == 1,
                    "one disruption allowed")
        sim_cluster.kubectl("drain", node, "--ignore-daemonsets", "--pod-selector=app=web", "--timeout=60s")
    finally:
        sim_cluster.kubectl("uncordon", node, check=False)
