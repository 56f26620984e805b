"""The compiled schema: patch metadata lookups and the unknown / required field checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nanokube.api import schema
from nanokube.api.schema import ARRAY, FREE, MAP, OBJECT, SCALAR, SchemaIndex

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "x",
            "labels": {"anything.example.com/goes": "here"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "x"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx",
                            "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                            "ports": [{"containerPort": 80}],
                        }
                    ]
                },
            },
        },
    }


# -- definitions and patch metadata ----------------------------------------------------------------------------------
def test_existing_helpers_still_work() -> None:
    defs = schema.definitions()
    assert DEPLOYMENT in defs
    assert schema.ref_name(defs[DEPLOYMENT]["properties"]["spec"]) == "io.k8s.api.apps.v1.DeploymentSpec"
    assert schema.ref_name({"type": "string"}) is None


@pytest.mark.parametrize(
    ("path", "strategy", "merge_key", "list_type"),
    [
        (("spec", "template", "spec", "containers"), "merge", "name", "map"),
        (("spec", "template", "spec", "containers", "ports"), "merge", "containerPort", "map"),
        (("spec", "template", "spec", "containers", "volumeMounts"), "merge", "mountPath", "map"),
        (("spec", "template", "spec", "volumes"), "merge,retainKeys", "name", "map"),
        (("spec", "template", "spec", "tolerations"), None, None, "atomic"),
        (("spec", "strategy"), "retainKeys", None, None),
        (("metadata", "finalizers"), "merge", None, "set"),
        (("metadata", "ownerReferences"), "merge", "uid", "map"),
        (("status", "conditions"), "merge", "type", "map"),
    ],
)
def test_patch_meta_of_deployment_fields(
    path: tuple[str, ...], strategy: str | None, merge_key: str | None, list_type: str | None
) -> None:
    meta = schema.patch_meta(DEPLOYMENT, path)
    assert (meta.strategy, meta.merge_key, meta.list_type) == (strategy, merge_key, list_type)


def test_patch_meta_flags_and_map_keys() -> None:
    volumes = schema.patch_meta(POD, ("spec", "volumes"))
    assert volumes.merges and volumes.retains_keys and not volumes.replaces
    assert schema.patch_meta(POD, ("spec", "containers", "ports")).map_keys == ("containerPort", "protocol")
    assert schema.patch_meta(POD, ("spec", "nodeSelector")).map_type == "atomic"
    assert schema.patch_meta(POD, ("spec", "nope")) == schema.NO_META


def test_lookup_follows_refs_items_and_maps() -> None:
    limits = schema.lookup(POD, ("spec", "containers", "resources", "limits"))
    assert limits is not None and limits.node.kind == MAP
    cpu = schema.lookup(POD, ("spec", "containers", "resources", "limits", "cpu"))
    assert cpu is not None and cpu.node.kind == SCALAR  # Quantity is oneOf string/number
    port = schema.lookup(POD, ("spec", "containers", 0, "ports", 0, "containerPort"))
    assert port is not None and port.node.kind == SCALAR
    containers = schema.lookup(POD, ("spec", "containers"))
    assert containers is not None and containers.node.kind == ARRAY
    assert containers.node.element().node.name == "io.k8s.api.core.v1.Container"
    raw = schema.lookup("io.k8s.api.apps.v1.ControllerRevision", ("data", "anything", "below"))
    assert raw is not None and raw.node.kind == FREE
    assert schema.lookup(POD, ("spec", "containers", "bogus")) is None


def test_recursive_definitions_compile() -> None:
    props = schema.lookup(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ("spec", "versions", "schema", "openAPIV3Schema", "properties", "spec", "properties", "x", "type"),
    )
    assert props is not None and props.node.kind == SCALAR


def test_every_definition_compiles() -> None:
    index = SchemaIndex(schema.definitions())
    kinds = {index.node(name).kind for name in schema.definitions()}
    assert kinds <= {OBJECT, ARRAY, MAP, FREE, SCALAR}


# -- unknown fields --------------------------------------------------------------------------------------------------
def test_a_clean_deployment_has_no_unknown_fields() -> None:
    assert schema.unknown_fields(DEPLOYMENT, deployment()) == []


def test_unknown_fields_are_reported_with_kubernetes_paths() -> None:
    obj = deployment()
    obj["bogus"] = "field"
    obj["spec"]["foo"] = 1
    obj["metadata"]["nme"] = "typo"
    containers = obj["spec"]["template"]["spec"]["containers"]
    containers[0]["imagee"] = "nginx"
    containers[0]["ports"][0]["hostIP2"] = "x"
    containers.append({"name": "b", "image": "b", "resources": {"limitz": {}}})
    # In document order: the misspelt keys were added after the other keys of their maps.
    assert schema.unknown_fields(DEPLOYMENT, obj) == [
        "metadata.nme",
        "spec.template.spec.containers[0].ports[0].hostIP2",
        "spec.template.spec.containers[0].imagee",
        "spec.template.spec.containers[1].resources.limitz",
        "spec.foo",
        "bogus",
    ]


def test_free_form_parts_are_never_unknown() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r", "annotations": {"x": "y"}},
        "data": {"spec": {"whatever": {"deep": [1, 2]}}},
        "revision": 1,
    }
    assert schema.unknown_fields("io.k8s.api.apps.v1.ControllerRevision", obj) == []


def test_unknown_fields_inside_map_values_are_named_without_the_key() -> None:
    crd = {
        "spec": {
            "versions": [
                {
                    "name": "v1",
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"typo": "x"}}}},
                }
            ]
        }
    }
    found = schema.unknown_fields(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition", crd
    )
    assert found == ["spec.versions[0].schema.openAPIV3Schema.properties.typo"]


def test_wrongly_typed_values_are_not_unknown_fields() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = {"name": "oops"}
    assert schema.unknown_fields(DEPLOYMENT, obj) == []


# -- required fields ------------------------------------------------------------------------------------------------
def test_a_complete_deployment_has_nothing_missing() -> None:
    assert schema.missing_required(DEPLOYMENT, deployment()) == []


def test_missing_required_fields_anywhere() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    obj["spec"]["template"]["spec"]["containers"].append({"image": "busybox"})
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = None
    assert schema.missing_required(DEPLOYMENT, obj) == [
        "spec.selector",
        "spec.template.spec.containers[0].ports[0].containerPort",
        "spec.template.spec.containers[1].name",
    ]


def test_missing_spec_and_pod_containers() -> None:
    assert schema.missing_required(DEPLOYMENT, {"metadata": {"name": "x"}}) == ["spec"]
    assert schema.missing_required(POD, {"metadata": {"name": "p"}, "spec": {}}) == ["spec.containers"]


def test_pod_status_condition_without_status() -> None:
    pod = {"spec": {"containers": [{"name": "c"}]}, "status": {"conditions": [{"type": "Ready"}]}}
    assert schema.missing_required(POD, pod) == ["status.conditions[0].status"]


# -- pruning ---------------------------------------------------------------------------------------------------------
def test_prune_unknown_drops_exactly_the_unknown_fields() -> None:
    obj = deployment()
    obj["bogus"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    before = copy.deepcopy(obj)
    pruned = schema.prune_unknown(DEPLOYMENT, obj)
    assert obj == before
    assert schema.unknown_fields(DEPLOYMENT, pruned) == []
    assert pruned == deployment()
    pruned["metadata"]["labels"]["changed"] = "1"
    assert "changed" not in obj["metadata"]["labels"]


def test_inline_schema_with_preserve_unknown_fields() -> None:
    index = SchemaIndex({})
    node = index.compile(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer"}},
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "open": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
            },
        }
    )
    obj = {"spec": {"size": 1, "colour": "red"}, "extra": {"x": {"y": 1}}, "open": {"z": 1, "known": {"b": 2}}}
    assert schema.unknown_fields(node, obj) == ["spec.colour", "open.known.b"]
    assert schema.prune_unknown(node, obj) == {"spec": {"size": 1}, "extra": {"x": {"y": 1}}, "open": {"z": 1, "known": {}}}
