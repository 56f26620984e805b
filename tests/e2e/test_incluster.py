"""In-cluster API access on the real node: a Pod's ``config.load_incluster_config()`` reaches the API server
through the ``kubernetes`` Service with its ServiceAccount's token, and ``kubectl create token`` gives a token
the API server accepts.

Runs `nanokube up --node native` as test_native_node does (root, runc, CNI; fails, not skips, without them).
The Pod runs on the host image with this test's own Python (the venv holds the ``kubernetes`` package); the
kubelet does not inject Service environment variables, so the Pod names the Service's address itself.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from .cluster import KUBECTL, Cluster, eventually, native_cluster

_wait = partial(eventually, timeout=60.0, interval=0.3)
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SCRIPT = f"""
from kubernetes import client, config
config.load_incluster_config()
namespace = open("{SA_DIR}/namespace").read()
pods = client.CoreV1Api().list_namespaced_pod(namespace)
print("PODS", " ".join(sorted(p.metadata.name for p in pods.items)))
"""


# The host image hides /tmp (where a CI checkout may live): the checkout (its venv: python, the kubernetes
# package, kubectl) goes into the Pod as a read-only hostPath at the same path.
CHECKOUT = str(Path(__file__).resolve().parents[2])


def pod_manifest(name: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "volumes": [{"name": "checkout", "hostPath": {"path": CHECKOUT}}],
                 "containers": [{"name": "main", "image": "nanokube.io/host",
                                 "command": [sys.executable, "-c", SCRIPT],  # the kubelet sets KUBERNETES_*
                                 "volumeMounts": [{"name": "checkout", "mountPath": CHECKOUT,
                                                   "readOnly": True}]}]}})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with native_cluster(Path(tmp_path_factory.mktemp("incluster"))) as c:
        yield c
        # A finished Pod's object goes at once: wait until the node also released its sandbox (mounts under the
        # data dir) before the cluster stops.
        c.kubectl("delete", "pods", "--all", "--timeout=60s", check=False, timeout=90)
        sandboxes = c.data_dir / "node" / "sandboxes"
        _wait(lambda: not sandboxes.is_dir() or not any(sandboxes.iterdir()), "the node to remove the sandboxes")


def test_pod_lists_pods_with_its_service_account(cluster: Cluster) -> None:
    c = cluster
    ca = (c.data_dir / "pki" / "ca.crt").read_text()
    _wait(lambda: c.kubectl("get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}",
                            check=False).stdout.strip() == ca.strip(), "kube-root-ca.crt in default")
    _wait(lambda: c.kubectl("get", "serviceaccount", "default", check=False).returncode == 0, "default account")
    eps = json.loads(c.kubectl("get", "endpoints", "kubernetes", "-o", "json").stdout)
    assert eps["subsets"][0]["addresses"][0]["ip"] != "127.0.0.1"
    c.kubectl("apply", "-f", "-", input=pod_manifest("lister"))
    spec = json.loads(c.kubectl("get", "pod", "lister", "-o", "json").stdout)["spec"]
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] != "checkout"]
    assert mount["mountPath"] == SA_DIR and mount["readOnly"] is True
    assert mount["name"].startswith("kube-api-access-")

    def finished() -> str | None:
        phase = c.kubectl("get", "pod", "lister", "-o", "jsonpath={.status.phase}", check=False).stdout
        return phase if phase in ("Succeeded", "Failed") else None

    phase = _wait(finished, "the lister Pod to finish")
    logs = c.kubectl("logs", "lister", check=False).stdout
    assert phase == "Succeeded", logs
    assert "PODS lister" in logs


def test_kubectl_create_token_is_accepted(cluster: Cluster) -> None:
    c = cluster
    _wait(lambda: c.kubectl("get", "serviceaccount", "default", check=False).returncode == 0, "default account")
    token = c.kubectl("create", "token", "default", "--duration", "15m").stdout.strip()
    part = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["exp"] - claims["iat"] == 900
    ok = c.kubectl("--token", token, "get", "pods", check=False)
    assert ok.returncode == 0, ok.stderr
    bad = c.kubectl("--token", token[:-4] + "AAAA", "get", "pods", check=False)
    assert bad.returncode != 0 and "provide credentials" in bad.stderr  # kubectl's wording of a 401
    me = c.kubectl("--token", token, "auth", "whoami", "-o", "json").stdout
    info = json.loads(me)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in info["groups"]
    assert json.loads(c.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]["username"] == "admin"


def test_kubectl_inside_a_pod_uses_its_service_account(cluster: Cluster) -> None:
    c = cluster
    _wait(lambda: c.kubectl("get", "serviceaccount", "default", check=False).returncode == 0, "default account")
    body = json.loads(pod_manifest("kubectl-inside"))
    body["spec"]["containers"][0]["command"] = [KUBECTL, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]
    c.kubectl("apply", "-f", "-", input=json.dumps(body))

    def finished() -> str | None:
        phase = c.kubectl("get", "pod", "kubectl-inside", "-o", "jsonpath={.status.phase}", check=False).stdout
        return phase if phase in ("Succeeded", "Failed") else None

    phase = _wait(finished, "kubectl in a Pod to finish")
    logs = c.kubectl("logs", "kubectl-inside", check=False).stdout
    assert phase == "Succeeded" and logs.strip() == "system:serviceaccount:default:default", logs
