"""OpenAPI v3 documents: structure, schema conversion, caching, and the real kubectl reading them (e2e)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
import pytest

from nanokube.api.registry import Registry, Resource, Subresource
from nanokube.api.schema import definitions
from nanokube.apiserver.openapi import OpenAPI, custom_component, references, to_openapi

PATCH_PARAMS = {"fieldValidation", "fieldManager", "dryRun", "force"}
SMP = "application/strategic-merge-patch+json"
CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"spec": {"type": "object", "description": "Spec of the cron tab.",
                            "properties": {"cronSpec": {"type": "string", "description": "The cron schedule."},
                                           "replicas": {"type": "integer"}}}},
}


def _crd() -> Resource:
    return Resource("stable.example.com", "v1", "crontabs", "CronTab", True, short_names=("ct",),
                    subresources=(Subresource("status", "CronTab", ("get", "patch", "update")),
                                  Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")),
                    custom=True)


def _doc(api: OpenAPI, path: str) -> dict[str, Any]:
    body = api.document(path)
    assert body is not None, path
    return json.loads(body)


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
            if method != "parameters"]


@pytest.fixture(scope="module")
def oapi_builtin() -> OpenAPI:
    return OpenAPI(Registry())


def test_root_lists_every_group_version_with_its_hash(oapi_builtin: OpenAPI) -> None:
    root = oapi_builtin.root()["paths"]
    expected = {"api", "apis"}
    for group, versions in Registry().groups():
        expected |= {f"apis/{group}/{v}" if group else f"api/{v}" for v in versions}
        expected |= {f"apis/{group}"} if group else set()
    assert set(root) == expected
    for path, entry in root.items():
        body = oapi_builtin.document(path)
        assert body is not None
        digest = hashlib.sha512(body).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
    assert oapi_builtin.document("apis/apps/v2") is None
    assert oapi_builtin.document("apis/nope.example.com/v1") is None


def test_every_ref_resolves_inside_its_document(oapi_builtin: OpenAPI) -> None:
    for path in oapi_builtin.root()["paths"]:
        doc = _doc(oapi_builtin, path)
        assert doc["openapi"] == "3.0.0"
        assert doc["info"] == {"title": "Kubernetes", "version": "v1.37.0"}
        schemas = doc["components"]["schemas"]
        raw = oapi_builtin.document(path) or b""
        assert b"#/$defs/" not in raw
        missing = references(doc) - set(schemas)
        assert not missing, (path, sorted(missing)[:5])
        # only what the paths need (transitively): every component is reachable from the paths
        reachable = set()
        pending = list(references(doc["paths"]))
        while pending:
            name = pending.pop()
            if name not in reachable:
                reachable.add(name)
                pending.extend(references(schemas[name]))
        assert reachable == set(schemas), path


def test_every_resource_has_its_paths(oapi_builtin: OpenAPI) -> None:
    for r in Registry():
        prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
        doc = _doc(oapi_builtin, prefix.strip("/"))
        ns = "/namespaces/{namespace}" if r.namespaced else ""
        collection = doc["paths"][f"{prefix}{ns}/{r.plural}"]
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        assert collection["post"]["x-kubernetes-group-version-kind"] == gvk
        if not r.stored or r.verbs == ("create",):
            assert set(collection) == {"parameters", "post"}
            assert f"{prefix}{ns}/{r.plural}/{{name}}" not in doc["paths"]
            continue
        item = doc["paths"][f"{prefix}{ns}/{r.plural}/{{name}}"]
        assert item["get"]["x-kubernetes-action"] == "get"
        assert item["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{r.definition}"}
        assert collection["get"]["x-kubernetes-action"] == "list"
        if r.namespaced:
            assert doc["paths"][f"{prefix}/{r.plural}"]["get"]["x-kubernetes-group-version-kind"] == gvk
        for sub in r.subresources:
            assert f"{prefix}{ns}/{r.plural}/{{name}}/{sub.name}" in doc["paths"]


def test_every_patch_declares_the_write_parameters(oapi_builtin: OpenAPI) -> None:
    count = 0
    for path in oapi_builtin.root()["paths"]:
        for _, method, op in _operations(_doc(oapi_builtin, path)):
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            if method == "patch" and op["x-kubernetes-action"] == "patch":
                count += 1
                assert names >= PATCH_PARAMS, op["operationId"]
                assert SMP in op["requestBody"]["content"]
            if method in ("put", "post") and op["x-kubernetes-action"] != "connect":
                assert names >= {"fieldValidation", "fieldManager", "dryRun"}, op["operationId"]
    assert count > 40


def test_kubernetes_style_operations(oapi_builtin: OpenAPI) -> None:
    apps = _doc(oapi_builtin, "apis/apps/v1")["paths"]
    item = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert item["patch"]["operationId"] == "patchAppsV1NamespacedDeployment"
    assert item["put"]["operationId"] == "replaceAppsV1NamespacedDeployment"
    assert item["delete"]["operationId"] == "deleteAppsV1NamespacedDeployment"
    assert {p["name"] for p in item["parameters"]} == {"name", "namespace", "pretty"}
    assert apps["/apis/apps/v1/deployments"]["get"]["operationId"] == "listAppsV1DeploymentForAllNamespaces"
    collection = apps["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert collection["delete"]["operationId"] == "deleteAppsV1CollectionNamespacedDeployment"
    assert collection["post"]["operationId"] == "createAppsV1NamespacedDeployment"
    scale = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["get"]["operationId"] == "readAppsV1NamespacedDeploymentScale"
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1",
                                                                 "kind": "Scale"}
    assert scale["put"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"}
    status = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert status["patch"]["operationId"] == "patchAppsV1NamespacedDeploymentStatus"
    assert status["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Deployment"

    core = _doc(oapi_builtin, "api/v1")["paths"]
    assert core["/api/v1/nodes/{name}"]["get"]["operationId"] == "readCoreV1Node"
    pods = "/api/v1/namespaces/{namespace}/pods/{name}"
    assert core[f"{pods}/log"]["get"]["operationId"] == "readCoreV1NamespacedPodLog"
    assert core[f"{pods}/exec"]["post"]["operationId"] == "connectCoreV1PostNamespacedPodExec"
    assert core[f"{pods}/exec"]["get"]["x-kubernetes-action"] == "connect"
    eviction = core[f"{pods}/eviction"]["post"]
    assert eviction["operationId"] == "createCoreV1NamespacedPodEviction"
    assert eviction["x-kubernetes-group-version-kind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    rbac = _doc(oapi_builtin, "apis/rbac.authorization.k8s.io/v1")["paths"]
    assert rbac["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["patch"]["operationId"] == (
        "patchRbacAuthorizationV1ClusterRole")


def test_schemas_are_openapi_3_0(oapi_builtin: OpenAPI) -> None:
    schemas = _doc(oapi_builtin, "apis/apps/v1")["components"]["schemas"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            assert not isinstance(node.get("type"), list), node
            assert None not in node.get("enum", [])
            assert "oneOf" not in node
            if "$ref" in node:
                assert set(node) == {"$ref"}, node  # siblings only next to allOf
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas)
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["description"] == definitions()["io.k8s.api.apps.v1.DeploymentSpec"]["properties"][
        "strategy"]["description"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert "name" in schemas["io.k8s.api.core.v1.Container"]["required"]
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (int_or_string["type"], int_or_string["format"]) == ("string", "int-or-string")
    assert int_or_string["x-kubernetes-int-or-string"] is True
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    assert schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert "enum" not in schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["kind"]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == {
        "description": definitions()["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["description"],
        "format": "date-time", "type": "string"}


def test_to_openapi_conversions() -> None:
    assert to_openapi({"type": ["string", "null"], "enum": ["a", None]}) == {"type": "string", "enum": ["a"]}
    assert to_openapi({"$ref": "#/$defs/X"}) == {"$ref": "#/components/schemas/X"}
    assert to_openapi({"$ref": "#/$defs/X", "description": "d"}) == {
        "allOf": [{"$ref": "#/components/schemas/X"}], "description": "d"}
    assert to_openapi({"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]}) == {
        "type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": True}
    assert to_openapi({"type": "object", "additionalProperties": {"type": ["string", "null"]},
                       "x-kubernetes-map-type": "atomic"}) == {
        "type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "atomic"}


def test_custom_resources() -> None:
    registry = Registry()
    api = OpenAPI(registry)
    before = api.root()["paths"]
    assert "apis/stable.example.com/v1" not in before
    registry.add(_crd())
    assert "apis/stable.example.com/v1" in api.root()["paths"]  # registry change drops the cache
    doc = _doc(api, "apis/stable.example.com/v1")
    item = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
    assert item["patch"]["operationId"] == "patchStableExampleComV1NamespacedCronTab"
    assert SMP not in item["patch"]["requestBody"]["content"]
    assert {"application/merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"} <= set(
        item["patch"]["requestBody"]["content"])
    assert {p["name"] for p in item["patch"]["parameters"]} >= PATCH_PARAMS
    name = custom_component("stable.example.com", "v1", "CronTab")
    assert name == "com.example.stable.v1.CronTab"
    schema = doc["components"]["schemas"][name]
    assert schema["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "version": "v1",
                                                          "kind": "CronTab"}]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    assert not references(doc) - set(doc["components"]["schemas"])

    old_hash = api.hash("apis/stable.example.com/v1")
    api.set_custom_schema("stable.example.com", "v1", "CronTab", CRONTAB_SCHEMA)
    assert api.hash("apis/stable.example.com/v1") != old_hash
    schema = _doc(api, "apis/stable.example.com/v1")["components"]["schemas"][name]
    assert schema["properties"]["spec"]["properties"]["cronSpec"]["type"] == "string"
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec"}
    assert "properties" not in CRONTAB_SCHEMA["properties"]["spec"]["properties"]["cronSpec"]  # not mutated
    assert "metadata" not in CRONTAB_SCHEMA["properties"]


def test_documents_are_cached_and_stable() -> None:
    registry = Registry()
    api = OpenAPI(registry)
    first = api.document("apis/apps/v1")
    assert first is not None and api.document("apis/apps/v1") is first
    again = OpenAPI(Registry()).document("apis/apps/v1")
    assert again == first  # deterministic across instances: stable hashes for kubectl's cache
    api.invalidate()
    rebuilt = api.document("apis/apps/v1")
    assert rebuilt == first and rebuilt is not first
    assert orjson.loads(first)["paths"]
