"""Object lifecycles as kubectl sees them: finalizers, namespace termination, garbage collection through
several levels and of dangling references, waiting for creation, and server dry-run deletes.

Nothing here needs a node: owners and dependents are written by the test, and only the API server and the
control-plane controllers (namespace, garbage collector) act on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import Cluster, eventually, later, unique
from .test_crd import crd_manifest, crontab

JSON = dict[str, Any]


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


_eventually = partial(eventually, timeout=20.0, interval=0.1)


def _uid(obj: Any) -> str:
    assert obj.metadata is not None
    return str(obj.metadata.uid)


def _missing(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


def _meta(obj: Any) -> client.V1ObjectMeta:
    assert obj.metadata is not None
    return obj.metadata


def _ref(api_version: str, kind: str, name: str, uid: str, *, block: bool = True) -> client.V1OwnerReference:
    return client.V1OwnerReference(api_version=api_version, kind=kind, name=name, uid=uid,
                                   block_owner_deletion=block)


# -- finalizers ---------------------------------------------------------------------------------------------
def test_finalizer_holds_deletion_until_removed(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="held", finalizers=["example.com/hold"])))
    result = cluster.kubectl("-n", namespace, "delete", "cm", "held", "--timeout=2s", check=False)
    assert result.returncode != 0
    assert 'configmap "held" deleted' in result.stdout
    assert "timed out waiting for the condition" in result.stderr
    live = core.read_namespaced_config_map("held", namespace)
    assert live.metadata is not None and live.metadata.deletion_timestamp is not None
    assert live.metadata.deletion_grace_period_seconds == 0
    # A finalizer cannot be added once deletion started; the same update without it is fine.
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": ["example.com/hold",
                                                                                         "example.com/new"]}})
    assert err.value.status == 422
    remover = later(1.0, lambda: core.patch_namespaced_config_map(
        "held", namespace, {"metadata": {"finalizers": None}}))
    waited = cluster.kubectl("-n", namespace, "wait", "--for=delete", "cm/held", "--timeout=30s", check=False)
    remover.join()
    assert waited.returncode == 0, waited.stderr
    assert _missing(lambda: core.read_namespaced_config_map("held", namespace))


# -- namespaces ---------------------------------------------------------------------------------------------
def test_deleting_a_namespace_deletes_everything_in_it(cluster: Cluster, api: client.ApiClient) -> None:
    name = unique("gone")
    group = f"{unique('ns')}.example.com"
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(group, group.split(".")[0].replace("-", ""))))
    cluster.kubectl("wait", "--for=condition=established", f"crd/crontabs.{group}", "--timeout=30s")
    try:
        cluster.kubectl("create", "namespace", name)
        cluster.kubectl("-n", name, "create", "configmap", "cm", "--from-literal=a=b")
        cluster.kubectl("-n", name, "create", "deployment", "web", "--image=nginx:1.25")
        cluster.kubectl("-n", name, "run", "pod", "--image=busybox", "--restart=Never")
        cluster.kubectl("-n", name, "create", "-f", "-", input=json.dumps(crontab("tab", group)))
        result = cluster.kubectl("delete", "namespace", name, "--timeout=60s", check=False)
        assert result.returncode == 0, result.stderr
        assert f'namespace "{name}" deleted' in result.stdout
        assert "not found" in cluster.kubectl("get", "namespace", name, check=False).stderr
        # Made again under the same name, the namespace is empty: its old contents were deleted, not hidden.
        cluster.kubectl("create", "namespace", name)
        core = client.CoreV1Api(api)
        assert [c.metadata.name for c in core.list_namespaced_config_map(name).items
                if c.metadata and c.metadata.name == "cm"] == []
        assert client.AppsV1Api(api).list_namespaced_deployment(name).items == []
        assert core.list_namespaced_pod(name).items == []
        tabs = client.CustomObjectsApi(api).list_namespaced_custom_object(group, "v1", name, "crontabs")
        assert isinstance(tabs, dict) and tabs["items"] == []
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        cluster.kubectl("delete", "crd", f"crontabs.{group}", "--wait=false", check=False)


def test_a_terminating_namespace_refuses_new_objects(cluster: Cluster, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    name = unique("term")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="held", finalizers=["example.com/hold"])))
    cluster.kubectl("delete", "namespace", name, "--wait=false")
    ns = core.read_namespace(name)
    assert ns.status is not None and ns.status.phase == "Terminating"
    assert ns.metadata is not None and ns.metadata.deletion_timestamp is not None
    result = cluster.kubectl("-n", name, "create", "configmap", "late", check=False)
    assert result.returncode != 0
    assert (f'configmaps "late" is forbidden: unable to create new content in namespace {name} because it is '
            f"being terminated") in result.stderr
    # The namespace waits for the held object, then goes.
    _eventually(lambda: _meta(core.read_namespaced_config_map("held", name)).deletion_timestamp is not None,
                "the namespace controller to delete the held object")
    assert not _missing(lambda: core.read_namespace(name))
    core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})
    _eventually(lambda: _missing(lambda: core.read_namespace(name)), "the namespace to go")


# -- garbage collection -------------------------------------------------------------------------------------
def test_foreground_deletion_through_two_levels(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    """Deployment -> ReplicaSet -> Pods: ``--cascade=foreground`` returns once the whole tree is gone."""
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    cluster.kubectl("-n", namespace, "create", "deployment", "tree", "--image=nginx:1.25", "--replicas=0")
    deploy = apps.read_namespaced_deployment("tree", namespace)
    # Keep the workload controllers away from this tree: the ReplicaSet matches no Deployment selector and the
    # Pods match no ReplicaSet selector, and no reference names a controller; only the garbage collector acts.
    rs_body = {"metadata": {"name": "tree-rs", "labels": {"tree": "rs"},
                            "ownerReferences": [_ref("apps/v1", "Deployment", "tree", _uid(deploy)).to_dict()]},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"tree": "rs"}},
                        "template": {"metadata": {"labels": {"tree": "rs"}},
                                     "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    rs = apps.create_namespaced_replica_set(namespace, rs_body)  # type: ignore[arg-type]
    for i in range(2):
        core.create_namespaced_pod(namespace, client.V1Pod(
            metadata=client.V1ObjectMeta(name=f"tree-pod{i}", labels={"tree": "leaf"},
                                         owner_references=[_ref("apps/v1", "ReplicaSet", "tree-rs", _uid(rs))]),
            spec=client.V1PodSpec(termination_grace_period_seconds=0,
                                  containers=[client.V1Container(name="c", image="busybox")])))
    result = cluster.kubectl("-n", namespace, "delete", "deployment", "tree", "--cascade=foreground",
                             "--timeout=30s", check=False)
    assert result.returncode == 0, result.stderr
    assert _missing(lambda: apps.read_namespaced_replica_set("tree-rs", namespace))
    assert core.list_namespaced_pod(namespace, label_selector="tree=leaf").items == []


def test_dangling_owner_references_are_collected(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="owner")))
    # One dependent names an owner that never existed, one names the right owner with a stale uid, and one
    # has a live owner besides a dead one: it only loses the dead reference.
    ghost = _ref("v1", "ConfigMap", "ghost", "00000000-0000-0000-0000-000000000001", block=False)
    stale = _ref("v1", "ConfigMap", "owner", "00000000-0000-0000-0000-000000000002", block=False)
    live = _ref("v1", "ConfigMap", "owner", _uid(owner), block=False)
    for name, refs in (("orphan-ghost", [ghost]), ("orphan-stale", [stale]), ("survivor", [ghost, live])):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=name, owner_references=refs)))

    def settled() -> bool:
        names = {c.metadata.name: c.metadata for c in core.list_namespaced_config_map(namespace).items
                 if c.metadata is not None}
        if "orphan-ghost" in names or "orphan-stale" in names or "survivor" not in names:
            return False
        refs = names["survivor"].owner_references or []
        return [r.uid for r in refs] == [_uid(owner)]

    _eventually(settled, "the garbage collector to settle the dangling references")


def test_python_orphan_and_background_deletes(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for policy in ("Orphan", "Background"):
        owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=f"owner-{policy.lower()}")))
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=f"dep-{policy.lower()}",
            owner_references=[_ref("v1", "ConfigMap", f"owner-{policy.lower()}", _uid(owner))])))
        core.delete_namespaced_config_map(f"owner-{policy.lower()}", namespace,
                                          body=client.V1DeleteOptions(propagation_policy=policy))
    _eventually(lambda: _missing(lambda: core.read_namespaced_config_map("dep-background", namespace)),
                "the background dependent to go")
    _eventually(lambda: not _meta(core.read_namespaced_config_map("dep-orphan", namespace)).owner_references,
                "the orphaned dependent to lose its reference")
    assert _missing(lambda: core.read_namespaced_config_map("owner-orphan", namespace))


# -- kubectl wait --for=create, dry-run deletes -------------------------------------------------------------
def test_wait_for_create(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    maker = later(1.0, lambda: core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="soon"))))
    result = cluster.kubectl("-n", namespace, "wait", "--for=create", "cm/soon", "--timeout=30s", check=False)
    maker.join()
    assert result.returncode == 0, result.stderr
    assert "configmap/soon condition met" in result.stdout


def test_delete_dry_run_server_keeps_the_object(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="stay")))
    out = cluster.kubectl("-n", namespace, "delete", "cm", "stay", "--dry-run=server").stdout
    assert f'configmap "stay" deleted from {namespace} namespace (server dry run)' in out
    kept = core.read_namespaced_config_map("stay", namespace)
    assert kept.metadata is not None and made.metadata is not None
    assert kept.metadata.resource_version == made.metadata.resource_version
    assert kept.metadata.deletion_timestamp is None
