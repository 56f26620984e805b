"""The real kubectl against `nanokube up`: discovery, get in every form, create, apply, patch, delete."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .cluster import Cluster

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
"""


def test_version(cluster: Cluster) -> None:
    out = cluster.kubectl("version", "-o", "json").stdout
    server = json.loads(out)["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "37")


def test_api_resources_lists_every_kind(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources").stdout
    for line in ("deployments", "deploy", "statefulsets", "customresourcedefinitions", "leases",
                 "endpointslices", "poddisruptionbudgets", "selfsubjectaccessreviews", "storageclasses"):
        assert line in out, line


def test_seeded_namespaces_and_get_forms(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "namespaces").stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert ns in out
    names = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    assert "namespace/default" in names
    doc = yaml.safe_load(cluster.kubectl("get", "ns", "default", "-o", "yaml").stdout)
    assert doc["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"
    assert doc["status"]["phase"] == "Active"
    jp = cluster.kubectl("get", "ns", "default", "-o", "jsonpath={.metadata.name}").stdout
    assert jp == "default"


def test_create_generators_and_table_columns(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "configmap", "cm1", "--from-literal=a=b", "--from-literal=c=d")
    cluster.kubectl("-n", namespace, "create", "secret", "generic", "s1", "--from-literal=k=v")
    cluster.kubectl("-n", namespace, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=2")
    cluster.kubectl("-n", namespace, "create", "service", "clusterip", "svc1", "--tcp=80:8080")
    cluster.kubectl("-n", namespace, "create", "job", "j1", "--image=busybox", "--", "echo", "hi")
    out = cluster.kubectl("-n", namespace, "get", "configmap", "cm1").stdout
    assert out.split("\n")[0].split() == ["NAME", "DATA", "AGE"]
    assert out.split("\n")[1].split()[:2] == ["cm1", "2"]
    out = cluster.kubectl("-n", namespace, "get", "deploy", "-o", "wide").stdout
    assert out.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                                          "IMAGES", "SELECTOR"]
    svc = json.loads(cluster.kubectl("-n", namespace, "get", "svc", "svc1", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"].startswith("10.43.")
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    secret = json.loads(cluster.kubectl("-n", namespace, "get", "secret", "s1", "-o", "json").stdout)
    assert secret["data"] == {"k": "dg=="}
    job = json.loads(cluster.kubectl("-n", namespace, "get", "job", "j1", "-o", "json").stdout)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]


def test_get_all_namespaces_labels_and_field_selectors(cluster: Cluster, namespace: str) -> None:
    for name, tier in (("a", "front"), ("b", "back"), ("c", "front")):
        cluster.kubectl("-n", namespace, "create", "configmap", name)
        cluster.kubectl("-n", namespace, "label", "configmap", name, f"tier={tier}")
    out = cluster.kubectl("get", "configmaps", "-A", "-l", "tier=front").stdout
    rows = [line.split() for line in out.strip().splitlines()]
    assert rows[0][0] == "NAMESPACE"
    assert sorted(r[1] for r in rows[1:]) == ["a", "c"]
    assert all(r[0] == namespace for r in rows[1:])
    out = cluster.kubectl("-n", namespace, "get", "cm", "-l", "tier in (back)", "-o", "name").stdout
    assert out.split() == ["configmap/b"]
    out = cluster.kubectl("-n", namespace, "get", "cm", "--field-selector", "metadata.name=c", "-o", "name").stdout
    assert out.split() == ["configmap/c"]
    out = cluster.kubectl("-n", namespace, "get", "cm", "--show-labels").stdout
    assert "tier=back" in out
    out = cluster.kubectl("-n", namespace, "get", "cm", "-L", "tier", "--chunk-size=1").stdout
    assert out.count("front") == 2
    bad = cluster.kubectl("-n", namespace, "get", "cm", "--field-selector", "spec.bogus=1", check=False)
    assert bad.returncode != 0
    assert '"spec.bogus" is not a known field selector' in bad.stderr


def test_apply_twice_is_a_three_way_merge(cluster: Cluster, namespace: str, workdir: Path) -> None:
    manifest = workdir / "deploy.yaml"
    manifest.write_text(DEPLOY)
    out = cluster.kubectl("-n", namespace, "apply", "-f", str(manifest)).stdout
    assert "deployment.apps/web created" in out
    # Someone else scales it; the second apply drops env B and changes the image, keeping other changes.
    cluster.kubectl("-n", namespace, "annotate", "deploy", "web", "owner=ops")
    changed = DEPLOY.replace("nginx:1.25", "nginx:1.26").replace(', {name: B, value: "2"}', "")
    manifest.write_text(changed)
    diff = cluster.kubectl("-n", namespace, "diff", "-f", str(manifest), check=False)
    assert diff.returncode == 1, diff.stderr
    assert "nginx:1.26" in diff.stdout
    out = cluster.kubectl("-n", namespace, "apply", "-f", str(manifest)).stdout
    assert "deployment.apps/web configured" in out
    obj = json.loads(cluster.kubectl("-n", namespace, "get", "deploy", "web", "-o", "json").stdout)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.26"
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert obj["metadata"]["annotations"]["owner"] == "ops"
    assert obj["metadata"]["generation"] == 2
    out = cluster.kubectl("-n", namespace, "apply", "-f", str(manifest)).stdout
    assert "unchanged" in out


def test_apply_rejects_unknown_fields_strictly(cluster: Cluster, namespace: str, workdir: Path) -> None:
    manifest = workdir / "bad.yaml"
    manifest.write_text(DEPLOY.replace("replicas: 2", "replicas: 2\n  bogus: 1"))
    result = cluster.kubectl("-n", namespace, "apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.bogus"' in result.stderr
    assert cluster.kubectl("-n", namespace, "get", "deploy", "-o", "name").stdout == ""


def test_server_side_apply(cluster: Cluster, namespace: str, workdir: Path) -> None:
    manifest = workdir / "deploy.yaml"
    manifest.write_text(DEPLOY)
    out = cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", str(manifest)).stdout
    assert "serverside-applied" in out
    manifest.write_text(DEPLOY.replace("replicas: 2", "replicas: 4"))
    cluster.kubectl("-n", namespace, "apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    obj = json.loads(cluster.kubectl("-n", namespace, "get", "deploy", "web", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 4


def test_patch_all_types_label_annotate_scale(cluster: Cluster, namespace: str, workdir: Path) -> None:
    manifest = workdir / "deploy.yaml"
    manifest.write_text(DEPLOY)
    cluster.kubectl("-n", namespace, "apply", "-f", str(manifest))
    cluster.kubectl("-n", namespace, "patch", "deploy", "web", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}}}')
    cluster.kubectl("-n", namespace, "patch", "deploy", "web", "--type=merge", "-p", '{"spec":{"paused":true}}')
    cluster.kubectl("-n", namespace, "patch", "deploy", "web", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]')
    cluster.kubectl("-n", namespace, "label", "deploy", "web", "team=blue")
    cluster.kubectl("-n", namespace, "annotate", "deploy", "web", "note=hello")
    out = cluster.kubectl("-n", namespace, "scale", "deploy", "web", "--replicas=5").stdout
    assert "scaled" in out
    obj = json.loads(cluster.kubectl("-n", namespace, "get", "deploy", "web", "-o", "json").stdout)
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"][1]["name"] == "B"
    assert obj["spec"]["paused"] is True
    assert obj["spec"]["revisionHistoryLimit"] == 3
    assert obj["spec"]["replicas"] == 5
    assert obj["metadata"]["labels"]["team"] == "blue"
    assert obj["metadata"]["annotations"]["note"] == "hello"
    failed = cluster.kubectl("-n", namespace, "patch", "deploy", "web", "--type=json", "-p",
                             '[{"op":"test","path":"/spec/replicas","value":1}]', check=False)
    assert failed.returncode != 0
    assert "Invalid" in failed.stderr or "test" in failed.stderr


def test_replace_and_edit(cluster: Cluster, namespace: str, workdir: Path) -> None:
    cluster.kubectl("-n", namespace, "create", "configmap", "conf", "--from-literal=a=1")
    obj = json.loads(cluster.kubectl("-n", namespace, "get", "cm", "conf", "-o", "json").stdout)
    obj["data"]["a"] = "2"
    path = workdir / "cm.json"
    path.write_text(json.dumps(obj))
    cluster.kubectl("-n", namespace, "replace", "-f", str(path))
    # A stale resourceVersion is a conflict.
    result = cluster.kubectl("-n", namespace, "replace", "-f", str(path), check=False)
    assert result.returncode != 0
    assert "the object has been modified" in result.stderr
    editor = workdir / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/a: \"2\"/a: \"3\"/' \"$1\"\n")
    editor.chmod(0o755)
    cluster.kubectl("-n", namespace, "edit", "cm", "conf", env={"KUBE_EDITOR": str(editor)})
    data = json.loads(cluster.kubectl("-n", namespace, "get", "cm", "conf", "-o", "json").stdout)["data"]
    assert data == {"a": "3"}


def test_errors_are_kubernetes_shaped(cluster: Cluster, namespace: str) -> None:
    result = cluster.kubectl("-n", namespace, "get", "deploy", "nope", check=False)
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in result.stderr
    cluster.kubectl("-n", namespace, "create", "configmap", "dup")
    result = cluster.kubectl("-n", namespace, "create", "configmap", "dup", check=False)
    assert 'configmaps "dup" already exists' in result.stderr
    result = cluster.kubectl("-n", namespace, "get", "configmap", "dup", "-o", "json")
    dup = json.loads(result.stdout)
    dup["metadata"].pop("resourceVersion")
    result = cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(dup), check=False)
    assert 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "dup" already exists' \
        in result.stderr
    result = cluster.kubectl("-n", "no-such-ns", "create", "configmap", "x", check=False)
    assert 'namespaces "no-such-ns" not found' in result.stderr
    result = cluster.kubectl("-n", namespace, "create", "deployment", "Bad_Name", "--image=x", check=False)
    assert "Invalid" in result.stderr


def test_auth_can_i_and_explain(cluster: Cluster) -> None:
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    out = cluster.kubectl("explain", "deployment.spec.strategy").stdout
    assert "RollingUpdate" in out
    out = cluster.kubectl("explain", "pods.spec.containers.image").stdout
    assert "image" in out.lower()


def test_unauthenticated_requests_are_refused(cluster: Cluster) -> None:
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    try:
        urllib.request.urlopen(cluster.url + "/api/v1/namespaces", context=ctx)
    except urllib.error.HTTPError as err:
        assert err.code == 401
        assert json.loads(err.read())["reason"] == "Unauthorized"
    else:
        raise AssertionError("an anonymous request was served")
