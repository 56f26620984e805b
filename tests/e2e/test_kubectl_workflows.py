"""The real kubectl in the workflows that stream, wait or cascade: ``get -w``, ``wait``, ``delete`` in every
cascade mode, events, ``get all``, server dry runs and ``generateName``.

Setup goes through the Python client where kubectl adds nothing (owners and dependents, events); every command
under test is the real kubectl. Commands that block (``wait``, ``delete``) carry their own ``--timeout``, so a
server that never answers makes kubectl fail rather than the test hang.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import KUBECTL, Cluster, eventually, later, unique

GENERATED_SUFFIX = re.compile(r"[bcdfghjklmnpqrstvwxz2456789]{5}")


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


def meta(obj: Any) -> client.V1ObjectMeta:
    """The metadata of a typed object read from the server (always present there)."""
    assert obj.metadata is not None
    return obj.metadata


ROOT_CA = "kube-root-ca.crt"  # every namespace has it (root-ca-cert-publisher), as on any cluster


def names(items: list[Any]) -> list[str]:
    """Names of ``items``, without the root CA ConfigMap every namespace holds."""
    return [str(meta(item).name) for item in items if str(meta(item).name) != ROOT_CA]


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines() if line.strip()]


_eventually = partial(eventually, timeout=20.0, interval=0.1)


class Streamed:
    """A long-running kubectl whose stdout lines are collected by a thread."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        self.cache = Path(cluster.data_dir) / f"kubectl-cache-{unique('w')}"
        self.process = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "--cache-dir",
                                         str(self.cache), *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, predicate: Callable[[list[str]], bool], what: str, timeout: float = 15.0) -> list[str]:
        """Wait for a printed line whose fields satisfy ``predicate``; returns those fields."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if predicate(line.split()):
                return line.split()
        stderr = ""
        if self.process.poll() is not None and self.process.stderr is not None:
            stderr = self.process.stderr.read()
        raise AssertionError(f"kubectl never printed {what}; printed:\n" + "\n".join(self.seen) + "\n" + stderr)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- kubectl get -w -----------------------------------------------------------------------------------------
def test_get_watch_prints_a_row_per_change(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="first"), data={"a": "1"}))
    watch = Streamed(cluster, "-n", namespace, "get", "configmaps", "-w")
    try:
        header = watch.expect(lambda f: f[:1] == ["NAME"], "the header")
        assert header == ["NAME", "DATA", "AGE"]
        assert watch.expect(lambda f: f[:1] == ["first"], "the listed row")[1] == "1"
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="second"), data={"x": "1", "y": "2"}))
        assert watch.expect(lambda f: f[:1] == ["second"], "the added row")[1] == "2"
        core.patch_namespaced_config_map("first", namespace, {"data": {"b": "2", "c": "3"}})
        assert watch.expect(lambda f: f[:1] == ["first"], "the modified row")[1] == "3"
        core.delete_namespaced_config_map("second", namespace)
        watch.expect(lambda f: f[:1] == ["second"], "the deleted row")
    finally:
        watch.stop()
    # The header is printed once, not with every event.
    assert sum(1 for line in watch.seen if line.split()[:1] == ["NAME"]) == 1


def test_get_watch_output_watch_events(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="one")))
    watch = Streamed(cluster, "-n", namespace, "get", "cm", "--watch", "--output-watch-events")
    try:
        assert watch.expect(lambda f: f[:1] == ["EVENT"], "the header") == ["EVENT", "NAME", "DATA", "AGE"]
        watch.expect(lambda f: f[:2] == ["ADDED", "one"], "the listed object as ADDED")
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="two")))
        watch.expect(lambda f: f[:2] == ["ADDED", "two"], "ADDED two")
        core.patch_namespaced_config_map("one", namespace, {"metadata": {"labels": {"k": "v"}}})
        watch.expect(lambda f: f[:2] == ["MODIFIED", "one"], "MODIFIED one")
        core.delete_namespaced_config_map("two", namespace)
        watch.expect(lambda f: f[:2] == ["DELETED", "two"], "DELETED two")
    finally:
        watch.stop()


def test_get_single_object_watch_ends_on_its_deletion_only(cluster: Cluster, api: client.ApiClient,
                                                           namespace: str) -> None:
    """``kubectl get cm x -w`` watches one object (fieldSelector=metadata.name=x): others never show."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="mine")))
    watch = Streamed(cluster, "-n", namespace, "get", "cm", "mine", "-w", "--output-watch-events")
    try:
        watch.expect(lambda f: f[:2] == ["ADDED", "mine"], "the object")
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="other")))
        core.patch_namespaced_config_map("mine", namespace, {"data": {"k": "v"}})
        watch.expect(lambda f: f[:2] == ["MODIFIED", "mine"], "MODIFIED mine")
    finally:
        watch.stop()
    assert not any("other" in line for line in watch.seen)


# -- kubectl wait -------------------------------------------------------------------------------------------
def test_wait_for_delete_returns_when_the_object_goes(cluster: Cluster, api: client.ApiClient,
                                                      namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    deleter = later(1.0, lambda: core.delete_namespaced_config_map("x", namespace))
    result = cluster.kubectl("-n", namespace, "wait", "--for=delete", "cm/x", "--timeout=30s", check=False)
    deleter.join()
    assert result.returncode == 0, result.stderr
    assert "configmap/x condition met" in result.stdout


def test_wait_for_delete_of_a_missing_object_is_immediate(cluster: Cluster, namespace: str) -> None:
    result = cluster.kubectl("-n", namespace, "wait", "--for=delete", "cm/never", "--timeout=30s", check=False)
    assert result.returncode == 0, result.stderr


def test_wait_for_jsonpath_value(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="x"), data={"a": "c"}))
    patcher = later(1.0, lambda: core.patch_namespaced_config_map("x", namespace, {"data": {"a": "b"}}))
    result = cluster.kubectl("-n", namespace, "wait", "--for=jsonpath={.data.a}=b", "cm/x", "--timeout=30s",
                             check=False)
    patcher.join()
    assert result.returncode == 0, result.stderr
    assert "configmap/x condition met" in result.stdout
    # Already true: answered from the initial events of the watch.
    again = cluster.kubectl("-n", namespace, "wait", "--for=jsonpath={.data.a}=b", "cm/x", "--timeout=30s",
                            check=False)
    assert again.returncode == 0, again.stderr


def test_wait_times_out_when_the_condition_never_holds(cluster: Cluster, api: client.ApiClient,
                                                       namespace: str) -> None:
    client.CoreV1Api(api).create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="x"), data={"a": "c"}))
    result = cluster.kubectl("-n", namespace, "wait", "--for=jsonpath={.data.a}=z", "cm/x", "--timeout=2s",
                             check=False)
    assert result.returncode != 0
    assert "timed out waiting for the condition" in result.stderr


# -- kubectl delete and garbage collection -----------------------------------------------------------------
def _replicaset(name: str) -> client.V1ReplicaSet:
    labels = {"app": name}
    return client.V1ReplicaSet(metadata=client.V1ObjectMeta(name=name, labels=labels), spec=client.V1ReplicaSetSpec(
        replicas=0, selector=client.V1LabelSelector(match_labels=labels),
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="busybox:1.36")]))))


def _owned_by(owner: client.V1ReplicaSet, *, controller: bool) -> list[client.V1OwnerReference]:
    return [client.V1OwnerReference(api_version="apps/v1", kind="ReplicaSet", name=str(meta(owner).name),
                                    uid=str(meta(owner).uid), controller=controller, block_owner_deletion=True)]


def _make_owner_with_dependents(api: client.ApiClient, namespace: str) -> tuple[str, list[str], list[str]]:
    """A ReplicaSet of zero replicas owning two ConfigMaps and two Pods. The Pods neither match its selector nor
    name it as their controller, so a ReplicaSet controller leaves them alone: only the garbage collector acts."""
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    name = unique("rs")
    owner = apps.create_namespaced_replica_set(namespace, _replicaset(name))
    cms = [f"{name}-cm{i}" for i in range(2)]
    pods = [f"{name}-pod{i}" for i in range(2)]
    for cm in cms:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=cm, owner_references=_owned_by(owner, controller=False))))
    for pod in pods:
        core.create_namespaced_pod(namespace, client.V1Pod(
            metadata=client.V1ObjectMeta(name=pod, labels={"dependent-of": name},
                                         owner_references=_owned_by(owner, controller=False)),
            spec=client.V1PodSpec(termination_grace_period_seconds=0,
                                  containers=[client.V1Container(name="c", image="busybox:1.36")])))
    return name, cms, pods


def _present(api: client.ApiClient, namespace: str, cms: list[str], pods: list[str]) -> dict[str, client.V1ObjectMeta]:
    core = client.CoreV1Api(api)
    found: dict[str, client.V1ObjectMeta] = {}
    for item in [*core.list_namespaced_config_map(namespace).items, *core.list_namespaced_pod(namespace).items]:
        if str(meta(item).name) in cms + pods:
            found[str(meta(item).name)] = meta(item)
    return found



def test_delete_cascade_background(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    name, cms, pods = _make_owner_with_dependents(api, namespace)
    result = cluster.kubectl("-n", namespace, "delete", "rs", name, "--cascade=background", "--timeout=30s")
    assert f'replicaset.apps "{name}" deleted' in result.stdout
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(api).read_namespaced_replica_set(name, namespace)
    assert err.value.status == 404
    _eventually(lambda: not _present(api, namespace, cms, pods), "the garbage collector to delete dependents")


def test_delete_cascade_foreground(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    name, cms, pods = _make_owner_with_dependents(api, namespace)
    result = cluster.kubectl("-n", namespace, "delete", "rs", name, "--cascade=foreground", "--timeout=30s",
                             check=False)
    assert result.returncode == 0, result.stderr
    assert f'replicaset.apps "{name}" deleted' in result.stdout
    # kubectl waited for the owner to go; a foreground owner goes only after its blocking dependents.
    assert _present(api, namespace, cms, pods) == {}


def test_delete_cascade_orphan(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    name, cms, pods = _make_owner_with_dependents(api, namespace)
    result = cluster.kubectl("-n", namespace, "delete", "rs", name, "--cascade=orphan", "--timeout=30s",
                             check=False)
    assert result.returncode == 0, result.stderr
    assert f'replicaset.apps "{name}" deleted' in result.stdout
    left = _present(api, namespace, cms, pods)
    assert sorted(left) == sorted(cms + pods)
    # The orphan finalizer is removed only after every reference to the owner is.
    assert all(not meta.owner_references for meta in left.values()), left
    # And nothing deletes them later.
    time.sleep(1.0)
    assert sorted(_present(api, namespace, cms, pods)) == sorted(cms + pods)


def test_delete_all_and_by_label(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for name, tier in (("a", "front"), ("b", "back"), ("c", "front"), ("d", "back")):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"tier": tier})))
    out = cluster.kubectl("-n", namespace, "delete", "cm", "-l", "tier=front", "--timeout=30s").stdout
    assert 'configmap "a" deleted' in out and 'configmap "c" deleted' in out
    assert '"b"' not in out
    left = sorted(names(core.list_namespaced_config_map(namespace).items))
    assert left == ["b", "d"]
    out = cluster.kubectl("-n", namespace, "delete", "cm", "--all", "--timeout=30s").stdout
    assert 'configmap "b" deleted' in out and 'configmap "d" deleted' in out
    assert names(core.list_namespaced_config_map(namespace).items) == []


def test_python_delete_collection(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for name, tier in (("a", "front"), ("b", "back"), ("c", "front")):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"tier": tier})))
    core.delete_collection_namespaced_config_map(namespace, label_selector="tier=front")
    assert names(core.list_namespaced_config_map(namespace).items) == ["b"]
    core.delete_collection_namespaced_config_map(namespace)
    assert names(core.list_namespaced_config_map(namespace).items) == []


# -- events -------------------------------------------------------------------------------------------------
def _event(namespace: str, name: str, involved: client.V1ConfigMap, type_: str, reason: str,
           message: str) -> client.CoreV1Event:
    now = datetime.now(UTC).replace(microsecond=0)
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        involved_object=client.V1ObjectReference(api_version="v1", kind="ConfigMap", namespace=namespace,
                                                 name=meta(involved).name, uid=meta(involved).uid),
        type=type_, reason=reason, message=message, count=1, first_timestamp=now, last_timestamp=now,
        source=client.V1EventSource(component="e2e-test"), reporting_component="e2e-test",
        reporting_instance="e2e")


def _make_events(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    target = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="target")))
    other = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="other")))
    core.create_namespaced_event(namespace, _event(namespace, "target.1", target, "Normal", "Created",
                                                   "made the target"))
    core.create_namespaced_event(namespace, _event(namespace, "target.2", target, "Warning", "Broken",
                                                   "the target broke"))
    core.create_namespaced_event(namespace, _event(namespace, "other.1", other, "Normal", "Touched",
                                                   "someone touched other"))


def test_get_events_table(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    _make_events(api, namespace)
    out = cluster.kubectl("-n", namespace, "get", "events").stdout
    lines = out.strip().splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = {tuple(line.split()[1:4]): line for line in lines[1:]}
    assert set(rows) == {("Normal", "Created", "configmap/target"), ("Warning", "Broken", "configmap/target"),
                         ("Normal", "Touched", "configmap/other")}
    assert rows[("Warning", "Broken", "configmap/target")].rstrip().endswith("the target broke")
    wide = cluster.kubectl("-n", namespace, "get", "events", "-o", "wide").stdout.splitlines()[0].split()
    assert wide == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST", "SEEN",
                    "COUNT", "NAME"]
    fields = cluster.kubectl("-n", namespace, "get", "events", "--field-selector", "type=Warning",
                             "-o", "name").stdout.split()
    assert fields == ["event/target.2"]


def test_kubectl_events(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    _make_events(api, namespace)
    out = cluster.kubectl("-n", namespace, "events").stdout
    lines = out.strip().splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert len(lines) == 4
    assert any(line.split()[1:4] == ["Warning", "Broken", "ConfigMap/target"] for line in lines[1:])
    only = cluster.kubectl("-n", namespace, "events", "--for", "configmap/target").stdout.strip().splitlines()
    assert sorted(line.split()[2] for line in only[1:]) == ["Broken", "Created"]
    warnings = cluster.kubectl("-n", namespace, "events", "--types=Warning").stdout.strip().splitlines()
    assert [line.split()[2] for line in warnings[1:]] == ["Broken"]


def test_core_events_are_served_by_events_k8s_io(api: client.ApiClient, namespace: str) -> None:
    """kube stores one Event resource and serves it at core/v1 and events.k8s.io/v1 alike."""
    _make_events(api, namespace)
    listed = client.EventsV1Api(api).list_namespaced_event(namespace)
    assert sorted(names(listed.items)) == ["other.1", "target.1", "target.2"]
    broken = next(e for e in listed.items if meta(e).name == "target.2")
    assert broken.regarding is not None and broken.regarding.name == "target"
    assert (broken.reason, broken.note) == ("Broken", "the target broke")


# -- kubectl get all ----------------------------------------------------------------------------------------
def test_get_all(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "deployment", "web", "--image=nginx:1.25")
    cluster.kubectl("-n", namespace, "create", "service", "clusterip", "web", "--tcp=80:8080")
    out = cluster.kubectl("-n", namespace, "get", "all").stdout
    rows = _rows(out)
    names = [r[0] for r in rows]
    assert "service/web" in names
    assert "deployment.apps/web" in names
    # One table per kind, each with its own header.
    headers = [r for r in rows if r[0] == "NAME"]
    assert ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] in headers
    assert ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] in headers
    service_row = next(r for r in rows if r[0] == "service/web")
    assert service_row[1] == "ClusterIP" and service_row[4] == "80/TCP"
    everywhere = _rows(cluster.kubectl("get", "all", "-A").stdout)
    assert ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] in everywhere
    mine = [r[1] for r in everywhere if r[0] == namespace]
    assert "service/web" in mine and "deployment.apps/web" in mine
    # The cluster's own service lives in default.
    assert any(r[:2] == ["default", "service/kubernetes"] for r in everywhere)


# -- dry runs and generateName ------------------------------------------------------------------------------
def test_create_dry_run_server_stores_nothing(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    out = cluster.kubectl("-n", namespace, "create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server",
                          "-o", "json").stdout
    obj = json.loads(out)
    assert obj["metadata"]["name"] == "dry" and obj["data"] == {"a": "b"}
    assert obj["metadata"]["namespace"] == namespace
    assert obj["metadata"].get("uid") and obj["metadata"].get("creationTimestamp")
    result = cluster.kubectl("-n", namespace, "get", "cm", "dry", check=False)
    assert 'configmaps "dry" not found' in result.stderr
    # A server dry run still validates.
    bad = cluster.kubectl("-n", namespace, "create", "configmap", "Bad_Name", "--dry-run=server", check=False)
    assert bad.returncode != 0 and "Invalid" in bad.stderr


def test_apply_dry_run_server_stores_nothing(cluster: Cluster, api: client.ApiClient, namespace: str,
                                             workdir: Path) -> None:
    manifest = workdir / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: '1'}\n")
    out = cluster.kubectl("-n", namespace, "apply", "--dry-run=server", "-f", str(manifest)).stdout
    assert "configmap/applied created (server dry run)" in out
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).read_namespaced_config_map("applied", namespace)
    assert err.value.status == 404
    cluster.kubectl("-n", namespace, "apply", "-f", str(manifest))
    live = client.CoreV1Api(api).read_namespaced_config_map("applied", namespace)
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: '2'}\n")
    out = cluster.kubectl("-n", namespace, "apply", "--dry-run=server", "-f", str(manifest), "-o", "json").stdout
    assert json.loads(out)["data"] == {"a": "2"}
    after = client.CoreV1Api(api).read_namespaced_config_map("applied", namespace)
    assert after.data == {"a": "1"}
    assert meta(after).resource_version == meta(live).resource_version


def test_create_with_generate_name(cluster: Cluster, namespace: str, workdir: Path) -> None:
    manifest = workdir / "gen.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: gen-}\ndata: {a: '1'}\n")
    made = []
    for _ in range(2):
        out = cluster.kubectl("-n", namespace, "create", "-f", str(manifest)).stdout.strip()
        match = re.fullmatch(r"configmap/(gen-\S+) created", out)
        assert match, out
        made.append(match.group(1))
    assert made[0] != made[1]
    assert all(GENERATED_SUFFIX.fullmatch(name.removeprefix("gen-")) for name in made), made
    listed = cluster.kubectl("-n", namespace, "get", "cm", "-o", "name").stdout.split()
    assert sorted(n for n in listed if n != f"configmap/{ROOT_CA}") == sorted(f"configmap/{n}" for n in made)
    # apply cannot use generateName.
    refused = cluster.kubectl("-n", namespace, "apply", "-f", str(manifest), check=False)
    assert refused.returncode != 0
    assert "cannot use generate name with apply" in refused.stderr


def test_events_k8s_io_events_show_in_kubectl(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    """An events.k8s.io/v1 Event (as client-go's new recorder writes) is a core Event for kubectl."""
    core = client.CoreV1Api(api)
    target = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="target")))
    now = datetime.now(UTC)
    client.EventsV1Api(api).create_namespaced_event(namespace, client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="target.new"), event_time=now, action="Touch", reason="Touched",
        note="touched by the new API", type="Normal", reporting_controller="e2e.example.com/ctl",
        reporting_instance="ctl-1", regarding=client.V1ObjectReference(
            api_version="v1", kind="ConfigMap", namespace=namespace, name="target", uid=meta(target).uid)))
    as_core = core.read_namespaced_event("target.new", namespace)
    assert as_core.involved_object.name == "target"
    assert (as_core.reason, as_core.message, as_core.type) == ("Touched", "touched by the new API", "Normal")
    assert as_core.reporting_component == "e2e.example.com/ctl"
    lines = cluster.kubectl("-n", namespace, "get", "events").stdout.strip().splitlines()
    row = lines[1].split()
    assert row[1:4] == ["Normal", "Touched", "configmap/target"]
    assert row[0] != "<unknown>"  # LAST SEEN comes from eventTime when lastTimestamp is unset
    out = cluster.kubectl("-n", namespace, "events", "--for", "configmap/target").stdout.strip().splitlines()
    assert out[1].split()[1:4] == ["Normal", "Touched", "ConfigMap/target"]


def test_get_events_sorted_by_time(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    target = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="target")))
    for i, reason in enumerate(("Third", "First", "Second")):
        event = _event(namespace, f"target.{i}", target, "Normal", reason, f"event {reason}")
        order = {"First": 1, "Second": 2, "Third": 3}[reason]
        event.last_timestamp = datetime(2026, 1, 1, 0, 0, order, tzinfo=UTC)
        event.first_timestamp = event.last_timestamp
        core.create_namespaced_event(namespace, event)
    out = cluster.kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp").stdout
    assert [line.split()[2] for line in out.strip().splitlines()[1:]] == ["First", "Second", "Third"]


def test_get_watch_of_an_empty_list_and_a_label_selection(cluster: Cluster, api: client.ApiClient,
                                                          namespace: str) -> None:
    core = client.CoreV1Api(api)
    watch = Streamed(cluster, "-n", namespace, "get", "cm", "-l", "tier=front", "-w", "--output-watch-events")
    try:
        time.sleep(1.0)  # the (empty) list is done and the watch open
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="x", labels={"tier": "back"})))
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="y", labels={"tier": "front"})))
        assert watch.expect(lambda f: f[:1] == ["EVENT"], "the header") == ["EVENT", "NAME", "DATA", "AGE"]
        watch.expect(lambda f: f[:2] == ["ADDED", "y"], "y")
        core.patch_namespaced_config_map("x", namespace, {"metadata": {"labels": {"tier": "front"}}})
        watch.expect(lambda f: f[:2] == ["ADDED", "x"], "x entering the selection")
        core.patch_namespaced_config_map("y", namespace, {"metadata": {"labels": {"tier": "back"}}})
        watch.expect(lambda f: f[:2] == ["DELETED", "y"], "y leaving the selection")
    finally:
        watch.stop()
    assert sum(1 for line in watch.seen if line.split()[:1] == ["EVENT"]) == 1


def test_kubectl_events_watch(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    target = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="target")))
    core.create_namespaced_event(namespace, _event(namespace, "target.1", target, "Normal", "Before", "before"))
    watch = Streamed(cluster, "-n", namespace, "events", "--watch")
    try:
        watch.expect(lambda f: "Before" in f, "the listed event")
        core.create_namespaced_event(namespace, _event(namespace, "target.2", target, "Warning", "After",
                                                       "after"))
        assert watch.expect(lambda f: "After" in f, "the new event")[1:4] == ["Warning", "After", "ConfigMap/target"]
    finally:
        watch.stop()
