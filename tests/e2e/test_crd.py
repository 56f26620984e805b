"""CustomResourceDefinitions end to end: the docs' CronTab CRD driven by the real kubectl and the Python client.

Each test makes its own CRD in a unique group (``crontabs.<unique>.example.com``) so tests stay independent and
deleting one CRD never disturbs another test. The CRD carries a status and a scale subresource, a short name and
printer columns, like the example in the Kubernetes docs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .cluster import Cluster, eventually, unique

JSON = dict[str, Any]


@dataclass
class CronTabs:
    group: str
    crd: str  # crontabs.<group>
    short: str  # the short name, unique per test so discovery never mixes two CRDs


def crd_manifest(group: str, short: str, *, categories: tuple[str, ...] = (), extra_versions: tuple[str, ...] = (),
                 scope: str = "Namespaced") -> JSON:
    """The docs' CronTab CRD; ``extra_versions`` are served too (not stored), as with conversion ``None``."""
    doc = _crd(group, short)
    doc["spec"]["scope"] = scope
    if categories:
        doc["spec"]["names"]["categories"] = list(categories)
    for name in extra_versions:
        version = json.loads(json.dumps(doc["spec"]["versions"][0]))
        version.update(name=name, storage=False)
        doc["spec"]["versions"].append(version)
    return doc


def _crd(group: str, short: str) -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"crontabs.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": [short]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "description": "What the CronTab runs.", "properties": {
                        "cronSpec": {"type": "string", "description": "When it runs."},
                        "image": {"type": "string"},
                        "replicas": {"type": "integer", "minimum": 0}}},
                    "status": {"type": "object", "properties": {
                        "replicas": {"type": "integer"},
                        "labelSelector": {"type": "string"}}}}}},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                         "statusReplicasPath": ".status.replicas",
                                                         "labelSelectorPath": ".status.labelSelector"}},
                "additionalPrinterColumns": [
                    {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec",
                     "description": "The cron spec defining the interval a CronJob is run"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas",
                     "description": "The number of jobs launched by the CronJob"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
            }],
        },
    }


def crontab(name: str, group: str, *, cron: str = "@hourly", replicas: int = 1, image: str = "cron:1") -> JSON:
    return {"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": name},
            "spec": {"cronSpec": cron, "image": image, "replicas": replicas}}


_eventually = partial(eventually, timeout=20.0, interval=0.1)


class Tabs:
    """CustomObjectsApi for the CronTabs of one group in one namespace, answering plain dicts."""

    def __init__(self, api: client.ApiClient, group: str, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.args = (group, "v1", namespace, "crontabs")

    def create(self, obj: JSON) -> JSON:
        return _dict(self.custom.create_namespaced_custom_object(*self.args, obj))

    def get(self, name: str) -> JSON:
        return _dict(self.custom.get_namespaced_custom_object(*self.args, name))

    def scale(self, name: str) -> JSON:
        return _dict(self.custom.get_namespaced_custom_object_scale(*self.args, name))

    def list(self) -> JSON:
        return _dict(self.custom.list_namespaced_custom_object(*self.args))

    def patch(self, name: str, body: JSON, content_type: str | None = None) -> JSON:
        return _dict(self.custom.patch_namespaced_custom_object(*self.args, name, body, _content_type=content_type))

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*self.args, name)


def _dict(value: object) -> JSON:
    assert isinstance(value, dict), value
    return value


def _error_body(err: ApiException) -> JSON:
    return _dict(json.loads(err.body or "{}"))


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def crontabs(cluster: Cluster) -> Iterator[CronTabs]:
    tag = unique("s")
    group = f"{tag}.example.com"
    tabs = CronTabs(group, f"crontabs.{group}", tag.replace("-", ""))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(group, tabs.short)))
    result = cluster.kubectl("wait", "--for=condition=established", f"crd/{tabs.crd}", "--timeout=30s")
    assert f"customresourcedefinition.apiextensions.k8s.io/{tabs.crd} condition met" in result.stdout
    yield tabs
    cluster.kubectl("delete", "crd", tabs.crd, "--ignore-not-found", "--wait=false", check=False)


def test_crd_is_established_and_discovered(cluster: Cluster, crontabs: CronTabs) -> None:
    crd = json.loads(cluster.kubectl("get", "crd", crontabs.crd, "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == [crontabs.short]
    rows = [line.split() for line in cluster.kubectl("api-resources", f"--api-group={crontabs.group}").stdout
            .strip().splitlines()]
    assert rows[1] == ["crontabs", crontabs.short, f"{crontabs.group}/v1", "true", "CronTab"]
    # Legacy discovery too (the Python dynamic client uses only this).
    group_doc = json.loads(cluster.kubectl("get", "--raw", f"/apis/{crontabs.group}/v1").stdout)
    names = {r["name"]: r for r in group_doc["resources"]}
    assert set(names) == {"crontabs", "crontabs/status", "crontabs/scale"}
    assert names["crontabs/scale"]["group"] == "autoscaling" and names["crontabs/scale"]["kind"] == "Scale"


def test_printer_columns_and_short_name(cluster: Cluster, crontabs: CronTabs, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "-f", "-",
                    input=json.dumps(crontab("nightly", crontabs.group, cron="@daily", replicas=3)))
    for name in ("crontabs", "crontab", crontabs.short, f"crontabs.{crontabs.group}"):
        out = cluster.kubectl("-n", namespace, "get", name).stdout
        rows = [line.split() for line in out.strip().splitlines()]
        assert rows[0] == ["NAME", "SPEC", "REPLICAS", "AGE"], name
        assert rows[1][:3] == ["nightly", "@daily", "3"], name
    everywhere = cluster.kubectl("get", crontabs.short, "-A").stdout.strip().splitlines()
    assert everywhere[0].split() == ["NAMESPACE", "NAME", "SPEC", "REPLICAS", "AGE"]
    assert everywhere[1].split()[:2] == [namespace, "nightly"]


def test_create_apply_and_merge_patch(cluster: Cluster, crontabs: CronTabs, namespace: str) -> None:
    obj = crontab("tab", crontabs.group)
    out = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(obj)).stdout
    assert f"crontab.{crontabs.group}/tab created" in out
    obj["spec"]["image"] = "cron:2"
    out = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(obj)).stdout
    assert f"crontab.{crontabs.group}/tab configured" in out
    cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "--type=merge", "-p",
                    '{"spec":{"cronSpec":"@weekly"}}')
    cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/replicas","value":4}]')
    got = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "-o", "json").stdout)
    assert got["spec"] == {"cronSpec": "@weekly", "image": "cron:2", "replicas": 4}
    assert got["metadata"]["generation"] == 4
    out = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(obj)).stdout
    assert f"crontab.{crontabs.group}/tab configured" in out
    got = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "-o", "json").stdout)
    assert got["spec"] == {"cronSpec": "@hourly", "image": "cron:2", "replicas": 1}


def test_strategic_merge_patch_is_refused_with_415(cluster: Cluster, api: client.ApiClient,
                                                   crontabs: CronTabs, namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    tabs.create(crontab("tab", crontabs.group))
    accepted = ("the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
    with pytest.raises(ApiException) as err:
        tabs.patch("tab", {"spec": {"replicas": 2}}, "application/strategic-merge-patch+json")
    assert err.value.status == 415
    body = _error_body(err.value)
    assert (body["reason"], body["message"]) == ("UnsupportedMediaType", accepted)
    result = cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "-p", '{"spec":{"replicas":2}}',
                             check=False)
    assert result.returncode != 0
    assert accepted in result.stderr
    # The Python client's default patch type for dict bodies on custom objects is merge patch.
    patched = tabs.patch("tab", {"spec": {"replicas": 2}})
    assert patched["spec"]["replicas"] == 2


def test_status_subresource(cluster: Cluster, crontabs: CronTabs, namespace: str) -> None:
    obj = crontab("tab", crontabs.group)
    obj["status"] = {"replicas": 9}
    created = json.loads(cluster.kubectl("-n", namespace, "create", "-f", "-", "-o", "json",
                                         input=json.dumps(obj)).stdout)
    assert "status" not in created or created["status"] == {}, created.get("status")
    cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "--subresource=status", "--type=merge", "-p",
                    '{"status":{"replicas":2,"labelSelector":"app=tab"},"spec":{"replicas":7}}')
    got = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "-o", "json").stdout)
    assert got["status"] == {"replicas": 2, "labelSelector": "app=tab"}
    assert got["spec"]["replicas"] == 1  # a status write never changes the spec
    assert got["metadata"]["generation"] == 1
    # ...and a main-resource write never changes the status.
    cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "--type=merge", "-p",
                    '{"status":{"replicas":5},"spec":{"image":"cron:3"}}')
    got = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "-o", "json").stdout)
    assert got["status"]["replicas"] == 2 and got["spec"]["image"] == "cron:3"
    status = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "--subresource=status",
                                        "-o", "json").stdout)
    assert status["status"]["replicas"] == 2


def test_scale_subresource(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(crontab("tab", crontabs.group)))
    cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "--subresource=status", "--type=merge", "-p",
                    '{"status":{"replicas":1,"labelSelector":"app=tab"}}')
    out = cluster.kubectl("-n", namespace, "scale", "crontab/tab", "--replicas=5").stdout
    assert f"crontab.{crontabs.group}/tab scaled" in out
    tabs = Tabs(api, crontabs.group, namespace)
    scale = tabs.scale("tab")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 5}
    assert scale["status"]["replicas"] == 1
    got = tabs.get("tab")
    assert got["spec"]["replicas"] == 5
    # --current-replicas is a precondition kubectl checks against the scale subresource.
    refused = cluster.kubectl("-n", namespace, "scale", "crontab/tab", "--current-replicas=2", "--replicas=3",
                              check=False)
    assert refused.returncode != 0
    assert "Expected replicas to be 2, was 5" in refused.stderr


def test_scale_reads_the_label_selector_path(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                             namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(crontab("tab", crontabs.group)))
    cluster.kubectl("-n", namespace, "patch", "crontab", "tab", "--subresource=status", "--type=merge", "-p",
                    '{"status":{"replicas":1,"labelSelector":"app=tab"}}')
    scale = Tabs(api, crontabs.group, namespace).scale("tab")
    assert scale["status"] == {"replicas": 1, "selector": "app=tab"}


def test_python_watch_of_custom_objects(api: client.ApiClient, crontabs: CronTabs, namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    start = tabs.list()
    assert start["kind"] == "CronTabList" and start["items"] == []

    def writer() -> None:
        time.sleep(0.3)
        tabs.create(crontab("w", crontabs.group))
        tabs.patch("w", {"spec": {"replicas": 2}})
        tabs.delete("w")

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    w = watch.Watch()
    for event in w.stream(tabs.custom.list_namespaced_custom_object, *tabs.args,
                          resource_version=start["metadata"]["resourceVersion"], timeout_seconds=10):
        seen.append((event["type"], event["object"]["metadata"]["name"], event["object"]["spec"]["replicas"]))
        if len(seen) == 3:
            w.stop()
    thread.join()
    assert seen == [("ADDED", "w", 1), ("MODIFIED", "w", 2), ("DELETED", "w", 2)]


def test_kubectl_explain(cluster: Cluster, crontabs: CronTabs) -> None:
    out = cluster.kubectl("explain", f"crontabs.{crontabs.group}.spec").stdout
    assert "KIND:       CronTab" in out
    assert f"GROUP:      {crontabs.group}" in out
    assert "What the CronTab runs." in out
    for field in ("cronSpec\t<string>", "image\t<string>", "replicas\t<integer>"):
        assert field in out, field
    out = cluster.kubectl("explain", f"crontabs.{crontabs.group}.spec.cronSpec").stdout
    assert "When it runs." in out


def test_custom_objects_are_validated_against_the_schema(cluster: Cluster, api: client.ApiClient,
                                                         crontabs: CronTabs, namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    bad = crontab("bad", crontabs.group)
    bad["spec"]["replicas"] = "three"
    with pytest.raises(ApiException) as err:
        tabs.create(bad)
    assert err.value.status == 422
    body = _error_body(err.value)
    assert body["message"] == (f'CronTab.{crontabs.group} "bad" is invalid: spec.replicas: Invalid value: '
                               '"string": spec.replicas in body must be of type integer: "string"')
    negative = crontab("neg", crontabs.group, replicas=-1)
    with pytest.raises(ApiException) as err:
        tabs.create(negative)
    assert err.value.status == 422
    assert "spec.replicas in body should be greater than or equal to 0" in _error_body(err.value)["message"]


def test_unknown_fields_are_pruned_or_refused(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                              namespace: str) -> None:
    obj = crontab("tab", crontabs.group)
    obj["spec"]["bogus"] = 1
    result = cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.bogus"' in result.stderr
    created = Tabs(api, crontabs.group, namespace).create(obj)
    assert "bogus" not in created["spec"]


def test_garbage_collection_of_custom_objects(api: client.ApiClient, crontabs: CronTabs, namespace: str) -> None:
    """A CronTab owned by a ConfigMap goes when the ConfigMap goes (the CRD was made after the GC started)."""
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="owner")))
    obj = crontab("owned", crontabs.group)
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                           "uid": owner.metadata and owner.metadata.uid}]
    tabs = Tabs(api, crontabs.group, namespace)
    tabs.create(obj)
    core.delete_namespaced_config_map("owner", namespace)

    def gone() -> bool:
        return not tabs.list()["items"]

    _eventually(gone, "the garbage collector to delete the owned CronTab", timeout=8.0)


def test_deleting_the_crd_removes_its_objects_and_its_api(cluster: Cluster, api: client.ApiClient,
                                                          crontabs: CronTabs, namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    for name in ("a", "b"):
        tabs.create(crontab(name, crontabs.group))
    out = cluster.kubectl("delete", "crd", crontabs.crd, "--timeout=30s").stdout
    assert f'customresourcedefinition.apiextensions.k8s.io "{crontabs.crd}" deleted' in out
    result = cluster.kubectl("-n", namespace, "get", crontabs.short, check=False)
    assert f'the server doesn\'t have a resource type "{crontabs.short}"' in result.stderr
    apis = json.loads(cluster.kubectl("get", "--raw", "/apis").stdout)
    assert crontabs.group not in {g["name"] for g in apis["groups"]}
    with pytest.raises(ApiException) as err:
        tabs.list()
    assert err.value.status == 404
    # Made again, the CRD starts empty: the old objects were deleted, not hidden.
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(crd_manifest(crontabs.group, crontabs.short)))
    cluster.kubectl("wait", "--for=condition=established", f"crd/{crontabs.crd}", "--timeout=30s")
    assert tabs.list()["items"] == []


# -- more shapes of CRDs ------------------------------------------------------------------------------------
@pytest.fixture
def make_crd(cluster: Cluster) -> Iterator[Callable[..., CronTabs]]:
    """Makes CronTab CRDs of other shapes (versions, categories, scope) and deletes them afterwards."""
    made: list[str] = []

    def make(**options: Any) -> CronTabs:
        tag = unique("m")
        group = f"{tag}.example.com"
        tabs = CronTabs(group, f"crontabs.{group}", tag.replace("-", ""))
        cluster.kubectl("apply", "-f", "-", input=json.dumps(crd_manifest(group, tabs.short, **options)))
        cluster.kubectl("wait", "--for=condition=established", f"crd/{tabs.crd}", "--timeout=30s")
        made.append(tabs.crd)
        return tabs

    yield make
    for name in made:
        cluster.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=false", check=False)


def test_kubectl_get_crd_columns(cluster: Cluster, crontabs: CronTabs) -> None:
    rows = [line.split() for line in cluster.kubectl("get", "crd", crontabs.crd).stdout.strip().splitlines()]
    assert rows[0] == ["NAME", "CREATED", "AT"]
    assert rows[1][0] == crontabs.crd
    assert rows[1][1].endswith("Z")  # an RFC 3339 timestamp, not an age


def test_get_watch_of_custom_objects_prints_printer_columns(cluster: Cluster, api: client.ApiClient,
                                                            crontabs: CronTabs, namespace: str) -> None:
    from .test_kubectl_workflows import Streamed

    tabs = Tabs(api, crontabs.group, namespace)
    tabs.create(crontab("first", crontabs.group, cron="@daily", replicas=1))
    watch_ = Streamed(cluster, "-n", namespace, "get", crontabs.short, "-w", "--output-watch-events")
    try:
        assert watch_.expect(lambda f: f[:1] == ["EVENT"], "the header") == ["EVENT", "NAME", "SPEC", "REPLICAS",
                                                                             "AGE"]
        assert watch_.expect(lambda f: f[:2] == ["ADDED", "first"], "the listed object")[2:4] == ["@daily", "1"]
        tabs.create(crontab("second", crontabs.group, cron="@weekly", replicas=2))
        assert watch_.expect(lambda f: f[:2] == ["ADDED", "second"], "ADDED second")[2:4] == ["@weekly", "2"]
        tabs.patch("first", {"spec": {"replicas": 7}})
        assert watch_.expect(lambda f: f[:2] == ["MODIFIED", "first"], "MODIFIED first")[3] == "7"
        tabs.delete("second")
        watch_.expect(lambda f: f[:2] == ["DELETED", "second"], "DELETED second")
    finally:
        watch_.stop()


def test_label_annotate_and_edit_custom_objects(cluster: Cluster, crontabs: CronTabs, namespace: str,
                                                tmp_path: Any) -> None:
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(crontab("tab", crontabs.group)))
    cluster.kubectl("-n", namespace, "label", "crontab", "tab", "tier=batch")
    cluster.kubectl("-n", namespace, "annotate", "crontab", "tab", "note=hi")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: cron:1/image: cron:9/' \"$1\"\n")
    editor.chmod(0o755)
    cluster.kubectl("-n", namespace, "edit", "crontab", "tab", env={"KUBE_EDITOR": str(editor)})
    got = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "-o", "json").stdout)
    assert got["metadata"]["labels"] == {"tier": "batch"}
    assert got["metadata"]["annotations"]["note"] == "hi"
    assert got["spec"]["image"] == "cron:9"
    names = cluster.kubectl("-n", namespace, "get", "crontabs", "-l", "tier=batch", "-o", "name").stdout.split()
    assert names == [f"crontab.{crontabs.group}/tab"]
    sorted_out = cluster.kubectl("-n", namespace, "get", "crontabs", "--sort-by=.spec.replicas").stdout
    assert sorted_out.splitlines()[1].split()[0] == "tab"


def test_server_side_apply_of_custom_objects(cluster: Cluster, crontabs: CronTabs, namespace: str) -> None:
    obj = crontab("tab", crontabs.group)
    out = cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=json.dumps(obj)).stdout
    assert f"crontab.{crontabs.group}/tab serverside-applied" in out
    obj["spec"]["replicas"] = 3
    cluster.kubectl("-n", namespace, "apply", "--server-side", "-f", "-", input=json.dumps(obj))
    got = json.loads(cluster.kubectl("-n", namespace, "get", "crontab", "tab", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3


def test_invalid_custom_object_name_is_422(api: client.ApiClient, crontabs: CronTabs, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        Tabs(api, crontabs.group, namespace).create(crontab("Bad_Name", crontabs.group))
    assert err.value.status == 422
    assert _error_body(err.value)["message"].startswith(
        f'CronTab.{crontabs.group} "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase '
        "RFC 1123 subdomain must consist of")


def test_categories_put_custom_objects_in_get_all(cluster: Cluster, api: client.ApiClient,
                                                  make_crd: Callable[..., CronTabs], namespace: str) -> None:
    tabs = make_crd(categories=("all",))
    Tabs(api, tabs.group, namespace).create(crontab("tab", tabs.group))
    names = [line.split()[0] for line in cluster.kubectl("-n", namespace, "get", "all").stdout.splitlines()
             if line.strip()]
    assert f"crontab.{tabs.group}/tab" in names


def test_cluster_scoped_custom_resources(cluster: Cluster, api: client.ApiClient,
                                         make_crd: Callable[..., CronTabs]) -> None:
    tabs = make_crd(scope="Cluster")
    out = cluster.kubectl("create", "-f", "-", input=json.dumps(crontab("global", tabs.group))).stdout
    assert f"crontab.{tabs.group}/global created" in out
    custom = client.CustomObjectsApi(api)
    got = _dict(custom.get_cluster_custom_object(tabs.group, "v1", "crontabs", "global"))
    assert "namespace" not in got["metadata"]
    rows = [line.split() for line in cluster.kubectl("get", tabs.short).stdout.strip().splitlines()]
    assert rows[0] == ["NAME", "SPEC", "REPLICAS", "AGE"] and rows[1][0] == "global"
    cluster.kubectl("delete", tabs.short, "global", "--timeout=30s")
    assert _dict(custom.list_cluster_custom_object(tabs.group, "v1", "crontabs"))["items"] == []


def test_every_served_version_serves_the_same_objects(cluster: Cluster, api: client.ApiClient,
                                                      make_crd: Callable[..., CronTabs], namespace: str) -> None:
    """With conversion ``None`` an object written through one version reads through every other, with that
    version's apiVersion."""
    tabs = make_crd(extra_versions=("v1beta1",))
    custom = client.CustomObjectsApi(api)
    old = crontab("old", tabs.group)
    old["apiVersion"] = f"{tabs.group}/v1beta1"
    custom.create_namespaced_custom_object(tabs.group, "v1beta1", namespace, "crontabs", old)
    custom.create_namespaced_custom_object(tabs.group, "v1", namespace, "crontabs", crontab("new", tabs.group))
    for version in ("v1", "v1beta1"):
        listed = _dict(custom.list_namespaced_custom_object(tabs.group, version, namespace, "crontabs"))
        assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["new", "old"], version
        assert {i["apiVersion"] for i in listed["items"]} == {f"{tabs.group}/{version}"}, version
        got = _dict(custom.get_namespaced_custom_object(tabs.group, version, namespace, "crontabs", "old"))
        assert got["apiVersion"] == f"{tabs.group}/{version}"
    patched = _dict(custom.patch_namespaced_custom_object(tabs.group, "v1beta1", namespace, "crontabs", "new",
                                                          {"spec": {"replicas": 4}}))
    assert patched["apiVersion"] == f"{tabs.group}/v1beta1" and patched["spec"]["replicas"] == 4
    # kubectl uses the preferred version (v1 sorts before v1beta1).
    out = json.loads(cluster.kubectl("-n", namespace, "get", tabs.short, "old", "-o", "json").stdout)
    assert out["apiVersion"] == f"{tabs.group}/v1"
    # So a read-modify-write through the preferred version works whatever version wrote the object.
    out["spec"]["replicas"] = 6
    cluster.kubectl("-n", namespace, "replace", "-f", "-", input=json.dumps(out))


# -- deletion of custom objects -----------------------------------------------------------------------------
@pytest.mark.parametrize("cascade", ["foreground", "orphan"])
def test_cascading_delete_of_a_custom_object(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                             namespace: str, cascade: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    owner = tabs.create(crontab("owner", crontabs.group))
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="dependent", owner_references=[client.V1OwnerReference(
            api_version=f"{crontabs.group}/v1", kind="CronTab", name="owner", uid=owner["metadata"]["uid"],
            block_owner_deletion=True)])))
    result = cluster.kubectl("-n", namespace, "delete", "crontab", "owner", f"--cascade={cascade}",
                             "--timeout=5s", check=False)
    assert result.returncode == 0, result.stderr
    left = [c for c in core.list_namespaced_config_map(namespace).items
            if c.metadata is not None and c.metadata.name == "dependent"]
    if cascade == "foreground":
        assert left == []
    else:
        assert len(left) == 1 and left[0].metadata is not None and not left[0].metadata.owner_references


def test_custom_object_finalizers_and_wait(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                           namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    obj = crontab("held", crontabs.group)
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    tabs.create(obj)
    cluster.kubectl("-n", namespace, "delete", "crontab", "held", "--wait=false")
    assert tabs.get("held")["metadata"].get("deletionTimestamp")

    def release() -> None:
        time.sleep(1.0)
        tabs.patch("held", {"metadata": {"finalizers": None}})

    thread = threading.Thread(target=release)
    thread.start()
    result = cluster.kubectl("-n", namespace, "wait", "--for=delete", "crontab/held", "--timeout=30s",
                             check=False)
    thread.join()
    assert result.returncode == 0, result.stderr


def test_wait_for_a_condition_of_a_custom_object(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                                 namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    tabs.create(crontab("tab", crontabs.group))
    # The schema has no status.conditions: kube prunes unknown fields, so declare them open first.
    patch = {"spec": {"versions": [{**crd_manifest(crontabs.group, crontabs.short)["spec"]["versions"][0]}]}}
    patch["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"][
        "x-kubernetes-preserve-unknown-fields"] = True
    cluster.kubectl("patch", "crd", crontabs.crd, "--type=merge", "-p", json.dumps(patch))

    def ready() -> None:
        time.sleep(1.0)
        tabs.custom.patch_namespaced_custom_object_status(*tabs.args, "tab", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "Done", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})

    thread = threading.Thread(target=ready)
    thread.start()
    result = cluster.kubectl("-n", namespace, "wait", "--for=condition=Ready", "crontab/tab", "--timeout=30s",
                             check=False)
    thread.join()
    assert result.returncode == 0, result.stderr
    assert f"crontab.{crontabs.group}/tab condition met" in result.stdout


def test_watchers_see_custom_objects_go_with_their_crd(cluster: Cluster, api: client.ApiClient,
                                                       crontabs: CronTabs, namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    for name in ("a", "b"):
        tabs.create(crontab(name, crontabs.group))
    start = tabs.list()["metadata"]["resourceVersion"]

    def remove_crd() -> None:
        time.sleep(0.5)
        cluster.kubectl("delete", "crd", crontabs.crd, "--wait=false")

    thread = threading.Thread(target=remove_crd)
    thread.start()
    deleted = []
    w = watch.Watch()
    for event in w.stream(tabs.custom.list_namespaced_custom_object, *tabs.args, resource_version=start,
                          timeout_seconds=10):
        if event["type"] == "DELETED":
            deleted.append(event["object"]["metadata"]["name"])
        if len(deleted) == 2:
            w.stop()
    thread.join()
    assert sorted(deleted) == ["a", "b"]


def test_updating_a_crd_updates_discovery(cluster: Cluster, crontabs: CronTabs, namespace: str) -> None:
    extra = f"{crontabs.short}x"
    manifest = crd_manifest(crontabs.group, crontabs.short)
    manifest["spec"]["names"]["shortNames"] = [crontabs.short, extra]
    manifest["spec"]["versions"][0]["additionalPrinterColumns"].insert(
        0, {"name": "Image", "type": "string", "jsonPath": ".spec.image"})
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(crontab("tab", crontabs.group)))
    rows = [line.split() for line in cluster.kubectl("-n", namespace, "get", extra).stdout.strip().splitlines()]
    assert rows[0] == ["NAME", "IMAGE", "SPEC", "REPLICAS", "AGE"]
    assert rows[1][:2] == ["tab", "cron:1"]


def test_crd_deletion_waits_for_custom_object_finalizers(cluster: Cluster, api: client.ApiClient,
                                                         crontabs: CronTabs, namespace: str) -> None:
    """kube deletes a CRD's objects through the API (their finalizers run) and keeps the CRD, Terminating, until
    they are gone."""
    tabs = Tabs(api, crontabs.group, namespace)
    obj = crontab("held", crontabs.group)
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    tabs.create(obj)
    cluster.kubectl("delete", "crd", crontabs.crd, "--wait=false")
    time.sleep(1.0)
    crd = json.loads(cluster.kubectl("get", "crd", crontabs.crd, "-o", "json").stdout)
    assert crd["metadata"].get("deletionTimestamp")
    held = tabs.get("held")
    assert held["metadata"].get("deletionTimestamp")
    tabs.patch("held", {"metadata": {"finalizers": None}})
    result = cluster.kubectl("wait", "--for=delete", f"crd/{crontabs.crd}", "--timeout=30s", check=False)
    assert result.returncode == 0, result.stderr


# -- printer columns and field selectors --------------------------------------------------------------------
def _table(out: str) -> dict[str, dict[str, str]]:
    """kubectl's table output cut at the header's column starts (blank cells survive), keyed by NAME."""
    lines = out.rstrip("\n").splitlines()
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    names = header.split()
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line) + 1], strict=True)]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


def test_printer_column_details(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                namespace: str) -> None:
    """Priority-1 columns only with ``-o wide``, missing values as empty cells (null; kubectl prints nothing),
    JSONPath filters."""
    manifest = crd_manifest(crontabs.group, crontabs.short)
    version = manifest["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"]["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] = True
    version["additionalPrinterColumns"] = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    tabs = Tabs(api, crontabs.group, namespace)
    tabs.create({"apiVersion": f"{crontabs.group}/v1", "kind": "CronTab", "metadata": {"name": "bare"},
                 "spec": {"image": "cron:1"}})
    tabs.create(crontab("ready", crontabs.group, cron="@daily"))
    tabs.custom.patch_namespaced_custom_object_status(*tabs.args, "ready", {"status": {"conditions": [
        {"type": "Scheduled", "status": "False"}, {"type": "Ready", "status": "True"}]}})
    rows = _table(cluster.kubectl("-n", namespace, "get", crontabs.short).stdout)
    assert list(rows["ready"]) == ["NAME", "READY", "SPEC", "AGE"]
    assert (rows["ready"]["READY"], rows["ready"]["SPEC"]) == ("True", "@daily")
    assert (rows["bare"]["READY"], rows["bare"]["SPEC"]) == ("", "")  # null cells print as nothing
    wide = _table(cluster.kubectl("-n", namespace, "get", crontabs.short, "-o", "wide").stdout)
    assert list(wide["bare"]) == ["NAME", "READY", "SPEC", "IMAGE", "AGE"]
    assert wide["bare"]["IMAGE"] == "cron:1"


def test_field_selectors_on_custom_objects(cluster: Cluster, api: client.ApiClient, crontabs: CronTabs,
                                           namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    tabs.create(crontab("daily", crontabs.group, cron="@daily"))
    tabs.create(crontab("weekly", crontabs.group, cron="@weekly"))
    out = cluster.kubectl("-n", namespace, "get", crontabs.short, "--field-selector", "metadata.name=daily",
                          "-o", "name").stdout.split()
    assert out == [f"crontab.{crontabs.group}/daily"]
    refused = cluster.kubectl("-n", namespace, "get", crontabs.short, "--field-selector", "spec.cronSpec=@daily",
                              check=False)
    assert refused.returncode != 0
    assert "field label not supported: spec.cronSpec" in refused.stderr  # apiextensions' own wording
    # Declared as selectable, the field can be selected on.
    manifest = crd_manifest(crontabs.group, crontabs.short)
    manifest["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.cronSpec"}]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    out = cluster.kubectl("-n", namespace, "get", crontabs.short, "--field-selector", "spec.cronSpec=@weekly",
                          "-o", "name").stdout.split()
    assert out == [f"crontab.{crontabs.group}/weekly"]


def test_collections_of_custom_objects(api: client.ApiClient, crontabs: CronTabs, namespace: str) -> None:
    tabs = Tabs(api, crontabs.group, namespace)
    for name, tier in (("a", "x"), ("b", "y"), ("c", "x")):
        obj = crontab(name, crontabs.group)
        obj["metadata"]["labels"] = {"tier": tier}
        tabs.create(obj)
    everywhere = _dict(tabs.custom.list_cluster_custom_object(crontabs.group, "v1", "crontabs"))
    assert sorted(i["metadata"]["name"] for i in everywhere["items"]) == ["a", "b", "c"]
    assert {i["metadata"]["namespace"] for i in everywhere["items"]} == {namespace}
    tabs.custom.delete_collection_namespaced_custom_object(*tabs.args, label_selector="tier=x")
    assert [i["metadata"]["name"] for i in tabs.list()["items"]] == ["b"]
    # Status and scale through PUT.
    live = tabs.get("b")
    live["status"] = {"replicas": 1, "labelSelector": "tier=y"}
    tabs.custom.replace_namespaced_custom_object_status(*tabs.args, "b", live)
    scale = tabs.scale("b")
    scale["spec"]["replicas"] = 6
    tabs.custom.replace_namespaced_custom_object_scale(*tabs.args, "b", scale)
    got = tabs.get("b")
    assert got["spec"]["replicas"] == 6 and got["status"]["replicas"] == 1


def test_dynamic_client_finds_and_uses_a_new_crd(api: client.ApiClient, crontabs: CronTabs, namespace: str,
                                                 tmp_path: Any) -> None:
    """The dynamic client discovers through legacy discovery only (/apis, /apis/<group>/<version>)."""
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    resource = dyn.resources.get(api_version=f"{crontabs.group}/v1", kind="CronTab")
    assert resource.namespaced and resource.name == "crontabs"
    assert resource.short_names == [crontabs.short]
    resource.create(body=crontab("dyn", crontabs.group, replicas=2), namespace=namespace)
    got = resource.get(name="dyn", namespace=namespace)
    assert got.spec.replicas == 2
    resource.patch(name="dyn", namespace=namespace, body={"spec": {"replicas": 3}},
                   content_type="application/merge-patch+json")
    assert resource.scale.get(name="dyn", namespace=namespace).spec.replicas == 3
    listed = resource.get(namespace=namespace)
    assert [i.metadata.name for i in listed.items] == ["dyn"]
    resource.delete(name="dyn", namespace=namespace)
    assert resource.get(namespace=namespace).items == []
