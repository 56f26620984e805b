"""Discovery documents built from the registry: aggregated v2 and legacy shapes (kubectl drives them in
tests/apiserver/test_openapi.py)."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.registry import Registry, Resource, Subresource
from nanokube.apiserver import discovery
from nanokube.apiserver.discovery import (
    AGGREGATED_CONTENT_TYPE,
    aggregated,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    version_sort_key,
    wants_aggregated,
)

KUBECTL_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def _aggregated_resources(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for item in doc["items"]:
        for version in item["versions"]:
            for res in version["resources"]:
                out[(item["metadata"]["name"], version["version"], res["resource"])] = res
    return out


def _crd(group: str = "stable.example.com", version: str = "v1", plural: str = "crontabs") -> Resource:
    return Resource(group, version, plural, "CronTab", True, short_names=("ct",), categories=("all",),
                    subresources=(Subresource("status", "CronTab", ("get", "patch", "update")),), custom=True)


def test_content_type_is_exact() -> None:
    assert AGGREGATED_CONTENT_TYPE == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.mark.parametrize(("accept", "expected"), [
    (KUBECTL_ACCEPT, True),
    ("application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io", True),
    ("application/json", False),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", False),
    ("", False),
])
def test_wants_aggregated(accept: str, expected: bool) -> None:
    assert wants_aggregated(accept) is expected


def test_every_registry_resource_is_in_aggregated_discovery() -> None:
    registry = Registry()
    found = _aggregated_resources(aggregated(registry, core=True)) | _aggregated_resources(aggregated(registry, False))
    for r in registry:
        entry = found[(r.group, r.version, r.plural)]
        assert entry["responseKind"] == {"group": "", "version": "", "kind": r.kind}
        assert entry["scope"] == ("Namespaced" if r.namespaced else "Cluster")
        assert entry["singularResource"] == r.singular_name
        assert entry.get("shortNames", []) == list(r.short_names)
        assert entry.get("categories", []) == list(r.categories)
    assert len(found) == len(registry.resources)


def test_core_and_groups_are_split() -> None:
    registry = Registry()
    core = aggregated(registry, core=True)
    assert core["kind"] == "APIGroupDiscoveryList" and core["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [i["metadata"]["name"] for i in core["items"]] == [""]
    groups = [i["metadata"]["name"] for i in aggregated(registry, core=False)["items"]]
    assert "" not in groups and "apps" in groups and groups[0] == "apps"
    for item in core["items"] + aggregated(registry, core=False)["items"]:
        for version in item["versions"]:
            assert version["freshness"] == "Current"
            names = [r["resource"] for r in version["resources"]]
            assert names == sorted(names)


def test_subresource_response_kinds() -> None:
    found = _aggregated_resources(aggregated(Registry(), core=False))
    found |= _aggregated_resources(aggregated(Registry(), core=True))
    subs = {s["subresource"]: s for s in found[("apps", "v1", "deployments")]["subresources"]}
    assert subs["scale"]["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert subs["status"]["responseKind"] == {"group": "", "version": "", "kind": "Deployment"}
    assert subs["scale"]["verbs"] == ["get", "patch", "update"]
    pod_subs = {s["subresource"]: s for s in found[("", "v1", "pods")]["subresources"]}
    assert pod_subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert pod_subs["log"]["responseKind"]["kind"] == "Pod"
    assert list(pod_subs) == sorted(pod_subs)


def test_categories_all_on_pods_and_deployments() -> None:
    registry = Registry()
    found = _aggregated_resources(aggregated(registry, True)) | _aggregated_resources(aggregated(registry, False))
    assert "all" in found[("", "v1", "pods")]["categories"]
    assert "all" in found[("apps", "v1", "deployments")]["categories"]
    assert "categories" not in found[("", "v1", "configmaps")]


def test_unstored_kinds_are_create_only() -> None:
    registry = Registry()
    registry.add(Resource("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview",
                          True, stored=False))  # registry default verbs: all of them
    found = _aggregated_resources(aggregated(registry, False))
    assert found[("authorization.k8s.io", "v1", "localsubjectaccessreviews")]["verbs"] == ["create"]
    legacy = api_resource_list(registry, "authorization.k8s.io", "v1")
    assert legacy is not None
    assert {r["name"]: r["verbs"] for r in legacy["resources"]}["localsubjectaccessreviews"] == ["create"]


def test_versions_in_preference_order() -> None:
    assert sorted(["v1alpha1", "v1beta1", "v2", "v1", "v1beta2", "foo"], key=version_sort_key) == [
        "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
    registry = Registry()
    registry.add(_crd(version="v1beta1"))
    registry.add(_crd(version="v1"))
    registry.add(_crd(version="v1alpha1"))
    item = next(i for i in aggregated(registry, False)["items"] if i["metadata"]["name"] == "stable.example.com")
    assert [v["version"] for v in item["versions"]] == ["v1", "v1beta1", "v1alpha1"]
    group = api_group(registry, "stable.example.com")
    assert group is not None
    assert group["preferredVersion"] == {"groupVersion": "stable.example.com/v1", "version": "v1"}
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1", "v1alpha1"]


def test_legacy_api_versions() -> None:
    doc = api_versions("127.0.0.1:6443")
    assert doc["kind"] == "APIVersions" and doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"] == [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]


def test_legacy_group_list_and_group() -> None:
    registry = Registry()
    doc = api_group_list(registry)
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    names = [g["name"] for g in doc["groups"]]
    assert names == [g for g, _ in registry.groups() if g]
    apps = api_group(registry, "apps")
    assert apps == {"kind": "APIGroup", "apiVersion": "v1", "name": "apps",
                    "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}
    assert api_group(registry, "nope.example.com") is None
    assert api_group(registry, "") is None


def test_legacy_resource_list_core() -> None:
    doc = api_resource_list(Registry(), "", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["pods"] == {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                               "verbs": list(Registry().get("", "v1", "pods").verbs),  # type: ignore[union-attr]
                               "shortNames": ["po"], "categories": ["all"]}
    assert by_name["pods/log"]["kind"] == "Pod" and by_name["pods/log"]["verbs"] == ["get"]
    assert "group" not in by_name["pods/log"]
    eviction = by_name["pods/eviction"]
    assert (eviction["group"], eviction["version"], eviction["kind"]) == ("policy", "v1", "Eviction")
    assert by_name["pods/exec"]["kind"] == "PodExecOptions"
    assert by_name["nodes"]["namespaced"] is False and by_name["nodes/status"]["namespaced"] is False
    names = [r["name"] for r in doc["resources"]]
    assert names == sorted(names)


def test_legacy_resource_list_apps_scale() -> None:
    registry = Registry()
    doc = api_resource_list(registry, "apps", "v1")
    assert doc is not None
    by_name = {r["name"]: r for r in doc["resources"]}
    scale = by_name["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert scale["singularName"] == ""
    expected = {r.plural for r in registry.in_group_version("apps", "v1")}
    expected |= {f"{r.plural}/{s.name}" for r in registry.in_group_version("apps", "v1") for s in r.subresources}
    assert set(by_name) == expected
    assert api_resource_list(registry, "apps", "v9") is None
    assert api_resource_list(registry, "nope", "v1") is None


def test_documents_follow_registry_changes() -> None:
    registry = Registry()
    registry.add(_crd())
    found = _aggregated_resources(aggregated(registry, False))
    assert found[("stable.example.com", "v1", "crontabs")]["shortNames"] == ["ct"]
    assert api_resource_list(registry, "stable.example.com", "v1") is not None
    registry.remove("stable.example.com", "v1", "crontabs")
    assert ("stable.example.com", "v1", "crontabs") not in _aggregated_resources(aggregated(registry, False))
    assert api_resource_list(registry, "stable.example.com", "v1") is None
    assert discovery.api_group(registry, "stable.example.com") is None
