"""Field sets: FieldsV1 as kube writes it, kube's path strings, set algebra, and the fields an object sets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nanokube.api.managedfields import FieldSet, FieldsV1Error, fields_of

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"

# The entry `kubectl create` leaves on a Deployment (kube 1.2x-1.3x), byte for byte in key order.
KUBE_CREATE_FIELDS = (
    '{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},'
    '"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},'
    '"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},'
    '"f:spec":{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},'
    '"f:name":{},"f:ports":{".":{},"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},'
    '"f:containerPort":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},'
    '"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},'
    '"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}'
)


def test_fields_v1_round_trip_keeps_kube_bytes() -> None:
    doc = json.loads(KUBE_CREATE_FIELDS)
    fields = FieldSet.from_fields_v1(doc)
    assert json.dumps(fields.to_fields_v1(), separators=(",", ":")) == KUBE_CREATE_FIELDS
    assert (("f:metadata", "f:labels") in fields) is True  # "." makes the map itself a member
    assert ("f:spec",) not in fields  # children only: not owned itself
    assert ("f:spec", "f:strategy", "f:rollingUpdate") in fields


def test_dot_marks_a_member_that_also_has_children() -> None:
    fields = FieldSet([("f:a",), ("f:a", "f:b"), ("f:c", "f:d"), ("f:e",)])
    assert fields.to_fields_v1() == {"f:a": {".": {}, "f:b": {}}, "f:c": {"f:d": {}}, "f:e": {}}


def test_reading_normalizes_order_and_key_spelling() -> None:
    doc = {"f:spec": {"f:ports": {'k:{"protocol": "TCP", "port": 80}': {}}}, "f:metadata": {"f:name": {}}}
    fields = FieldSet.from_fields_v1(doc)
    assert list(fields.to_fields_v1()) == ["f:metadata", "f:spec"]
    assert fields.strings() == [".metadata.name", '.spec.ports[port=80,protocol="TCP"]']


def test_elements_sort_fields_then_keys_then_values() -> None:
    fields = FieldSet([("v:2",), ('v:"a"',), ('k:{"name":"b"}',), ("f:z",), ('k:{"name":"a"}',), ("v:true",)])
    assert list(fields.to_fields_v1()) == ["f:z", 'k:{"name":"a"}', 'k:{"name":"b"}', "v:2", 'v:"a"', "v:true"]


def test_unknown_element_kinds_are_dropped_and_bad_ones_refused() -> None:
    assert FieldSet.from_fields_v1({"x:future": {}, "f:a": {}}).strings() == [".a"]
    for bad in ({"k:notjson": {}}, {"f:a": 1}, {"q": {}}, ["f:a"]):
        with pytest.raises(FieldsV1Error):
            FieldSet.from_fields_v1(bad)


def test_path_strings_as_kube_prints_them() -> None:
    fields = FieldSet([
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}', "f:image"),
        ("f:metadata", "f:finalizers", 'v:"example.com/x"'),
        ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}'),
    ])
    assert sorted(fields.strings()) == [
        '.metadata.finalizers[="example.com/x"]',
        '.spec.ports[port=80,protocol="TCP"]',
        '.spec.template.spec.containers[name="app"].image',
    ]


def test_iteration_lists_members_before_deeper_paths() -> None:
    fields = FieldSet([("f:spec", "f:template", "f:x"), ("f:spec", "f:replicas"), ("f:metadata", "f:labels", "f:a")])
    assert fields.strings() == [".metadata.labels.a", ".spec.replicas", ".spec.template.x"]


def test_set_algebra_works_on_whole_paths() -> None:
    a = FieldSet([("f:a",), ("f:a", "f:b"), ("f:c",)])
    b = FieldSet([("f:a",), ("f:d",)])
    assert (a | b).strings() == [".a", ".c", ".d", ".a.b"]
    assert (a & b).strings() == [".a"]
    assert (a - b).strings() == [".c", ".a.b"]  # a child survives its parent's removal
    assert a.recursive_difference(b).strings() == [".c"]  # unless the whole subtree goes
    assert not FieldSet() and FieldSet([()]) == FieldSet()


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7", "generation": 2,
                     "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"app": "web"},
                     "finalizers": ["example.com/keep"],
                     "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "o1"}],
                     "managedFields": [{"manager": "m", "operation": "Update"}]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}],
                                "env": [{"name": "A", "value": "1"}]}],
                "tolerations": [{"key": "k", "operator": "Exists"}]}}},
    }


def test_fields_of_deployment_membership() -> None:
    fields = fields_of(deployment(), DEPLOYMENT)
    strings = set(fields.strings())
    for absent in (".metadata.name", ".metadata.namespace", ".metadata.uid", ".metadata.resourceVersion",
                   ".metadata.generation", ".metadata.creationTimestamp", ".metadata.managedFields", ".apiVersion",
                   ".kind", ".metadata.finalizers", ".spec.selector.matchLabels.app",
                   '.metadata.ownerReferences[uid="o1"].name'):  # OwnerReference is an atomic struct
        assert absent not in strings
    for present in ('.metadata.finalizers[="example.com/keep"]', '.metadata.ownerReferences[uid="o1"]',
                    ".spec.selector", ".spec.template.spec.tolerations",
                    '.spec.template.spec.containers[name="app"].env[name="A"].value',
                    '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]'):
        assert present in strings
    containers = fields.to_fields_v1()["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(containers) == ['k:{"name":"app"}']
    assert containers['k:{"name":"app"}']["."] == {}


def test_fields_of_an_empty_map_or_null_owns_the_field_itself() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {}},
           "spec": {"securityContext": {}, "nodeName": None, "containers": [{"name": "c", "resources": {}}]}}
    assert set(fields_of(pod, POD).strings()) == {
        ".metadata.labels", ".spec.securityContext", ".spec.nodeName", '.spec.containers[name="c"]',
        '.spec.containers[name="c"].name', '.spec.containers[name="c"].resources'}


def test_custom_resources_without_schema_have_atomic_lists() -> None:
    obj = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t", "labels": {"a": "b"}},
           "spec": {"items": [{"name": "a"}], "size": {"cpu": 1}}}
    assert set(fields_of(obj, None).strings()) == {
        ".metadata.labels.a", ".spec.items", ".spec.size", ".spec.size.cpu", ".spec"}


def test_custom_resources_follow_their_structural_schema() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "proto"],
                  "items": {"type": "object", "properties": {
                      "port": {"type": "integer"}, "proto": {"type": "string", "default": "TCP"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                "additionalProperties": {"type": "string"}}}}}}
    obj = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"},
           "spec": {"ports": [{"port": 80}], "tags": ["a"], "sel": {"k": "v"}}}
    assert set(fields_of(obj, None, schema=schema).strings()) == {
        '.spec.ports[port=80,proto="TCP"]', '.spec.ports[port=80,proto="TCP"].port', '.spec.tags[="a"]',
        ".spec.sel"}
