"""Field selectors: parsing and escaping, per-kind labels and their errors, matching (dict and compiled)."""

from __future__ import annotations

from typing import Any

import pytest

from nanokube.api.fields import (
    FieldSelector,
    check_supported,
    compile_matcher,
    custom_resource_field_spec,
    escape_value,
    field_set,
    parse_field_selector,
    supported_fields,
    unescape_value,
)

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "nodeName": "node1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "containers": [{"name": "c", "image": "nginx"}],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.42.0.5",
        "podIPs": [{"ip": "10.42.0.5"}],
        "hostIP": "192.168.1.2",
        "nominatedNodeName": "",
    },
}

CORE_EVENT: dict[str, Any] = {
    "metadata": {"name": "web.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u-1", "apiVersion": "v1",
                       "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
    "reason": "Pulled",
    "source": {"component": "kubelet", "host": "node1"},
    "type": "Normal",
    "reportingComponent": "kubelet",
}

NODE_EVENT: dict[str, Any] = {
    "metadata": {"name": "node1.1", "namespace": "default"},
    "involvedObject": {"kind": "Node", "name": "node1", "uid": "node1"},
    "reason": "Starting",
    "reportingComponent": "kubelet",
    "type": "Normal",
}

EVENTS_V1_EVENT: dict[str, Any] = {
    "metadata": {"name": "web.2", "namespace": "default"},
    "regarding": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u-1", "apiVersion": "v1"},
    "reason": "Scheduled",
    "reportingController": "default-scheduler",
    "type": "Normal",
}


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", (), ""),
        (",,", (), ""),
        ("metadata.name=x", (("metadata.name", "=", "x"),), "metadata.name=x"),
        ("a==b", (("a", "=", "b"),), "a=b"),
        ("a!=b", (("a", "!=", "b"),), "a!=b"),
        ("a=", (("a", "=", ""),), "a="),
        ("a=!b", (("a", "=", "!b"),), "a=!b"),
        (
            "spec.nodeName=node1,status.phase!=Succeeded,status.phase!=Failed",
            (("spec.nodeName", "=", "node1"), ("status.phase", "!=", "Failed"), ("status.phase", "!=", "Succeeded")),
            "spec.nodeName=node1,status.phase!=Failed,status.phase!=Succeeded",
        ),
        ("a=b\\,c\\=d\\\\e", (("a", "=", "b,c=d\\e"),), "a=b\\,c\\=d\\\\e"),
        ("a= b ", (("a", "=", " b "),), "a= b "),
        ("a=b,,c=d", (("a", "=", "b"), ("c", "=", "d")), "a=b,c=d"),
    ],
)
def test_parse(text: str, requirements: tuple, canonical: str) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == requirements
    assert str(selector) == canonical
    assert selector.empty is (not requirements)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "invalid selector: 'x'; can't understand 'x'"),
        ("a=b,x", "invalid selector: 'a=b,x'; can't understand 'x'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_field_selector(text)
    assert str(caught.value) == message


def test_escape_roundtrip() -> None:
    for raw in ["plain", "a,b", "a=b", "back\\slash", "\\,=", ""]:
        assert unescape_value(escape_value(raw)) == raw
        assert parse_field_selector("f=" + escape_value(raw)).requirements == (("f", "=", raw),)


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=", {}, True),  # a missing field reads as ""
        ("a!=", {}, False),
        ("a!=b", {}, True),
        ("a=b,c!=d", {"a": "b", "c": "e"}, True),
        ("a=b,c!=d", {"a": "b", "c": "d"}, False),
    ],
)
def test_matches_field_set(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


def test_requires_exact_match() -> None:
    selector = parse_field_selector("metadata.name=x,spec.nodeName!=n")
    assert selector.requires_exact_match("metadata.name") == "x"
    assert selector.requires_exact_match("spec.nodeName") is None
    assert FieldSelector().requires_exact_match("metadata.name") is None


def test_pod_field_set() -> None:
    assert field_set("", "Pod", POD) == {
        "metadata.name": "web",
        "metadata.namespace": "default",
        "spec.nodeName": "node1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "false",
        "status.phase": "Running",
        "status.podIP": "10.42.0.5",
        "status.podIPs": "",
        "status.nominatedNodeName": "",
        "status.hostIP": "192.168.1.2",
    }


def test_pod_field_values_from_sparse_and_odd_objects() -> None:
    sparse = {"metadata": {"name": "p"}, "spec": {"hostNetwork": True}}
    fields = field_set("", "Pod", sparse)
    assert fields["metadata.namespace"] == ""
    assert fields["spec.nodeName"] == ""
    assert fields["spec.hostNetwork"] == "true"
    assert fields["status.phase"] == ""
    # podIP comes from podIPs[0] when present, else the singular field.
    assert field_set("", "Pod", {"status": {"podIP": "1.2.3.4"}})["status.podIP"] == "1.2.3.4"
    assert field_set("", "Pod", {"status": {"podIP": "1.1.1.1", "podIPs": [{"ip": "2.2.2.2"}]}})["status.podIP"] == "2.2.2.2"
    assert field_set("", "Pod", {"spec": None, "status": "garbage"})["spec.nodeName"] == ""


def test_other_kinds_field_sets() -> None:
    assert field_set("", "Node", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}) == {
        "metadata.name": "n1", "spec.unschedulable": "true"}
    assert field_set("", "Node", {"metadata": {"name": "n1"}})["spec.unschedulable"] == "false"
    assert field_set("", "Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}) == {
        "metadata.name": "ns", "status.phase": "Active"}
    assert field_set("", "Secret", {"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"})["type"] == "Opaque"
    svc = field_set("", "Service", {"metadata": {"name": "s"}, "spec": {"clusterIP": "10.43.0.1", "type": "ClusterIP"}})
    assert (svc["spec.clusterIP"], svc["spec.type"]) == ("10.43.0.1", "ClusterIP")
    assert field_set("", "ReplicationController", {"status": {"replicas": 3}})["status.replicas"] == "3"
    assert field_set("apps", "ReplicaSet", {"status": {}})["status.replicas"] == "0"
    assert field_set("batch", "Job", {"status": {"succeeded": 2}})["status.successful"] == "2"
    assert field_set("apps", "Deployment", {"metadata": {"name": "d", "namespace": "n"}}) == {
        "metadata.name": "d", "metadata.namespace": "n"}


def test_core_event_field_set() -> None:
    assert field_set("", "Event", CORE_EVENT) == {
        "involvedObject.kind": "Pod",
        "involvedObject.namespace": "default",
        "involvedObject.name": "web",
        "involvedObject.uid": "u-1",
        "involvedObject.apiVersion": "v1",
        "involvedObject.resourceVersion": "7",
        "involvedObject.fieldPath": "spec.containers{c}",
        "reason": "Pulled",
        "reportingComponent": "kubelet",
        "source": "kubelet",
        "type": "Normal",
        "metadata.name": "web.1",
        "metadata.namespace": "default",
    }


def test_event_source_falls_back_to_reporting_controller() -> None:
    assert field_set("", "Event", NODE_EVENT)["source"] == "kubelet"
    assert field_set("events.k8s.io", "Event", EVENTS_V1_EVENT)["source"] == "default-scheduler"
    assert field_set("events.k8s.io", "Event", EVENTS_V1_EVENT)["involvedObject.name"] == "web"


def test_describe_node_event_query_matches_empty_namespace() -> None:
    # kubectl describe node: involvedObject.namespace= (empty value) must match an event whose object has none.
    selector = parse_field_selector(
        "involvedObject.name=node1,involvedObject.namespace=,involvedObject.kind=Node,involvedObject.uid=node1"
    )
    assert compile_matcher("", "Event", selector)(NODE_EVENT)
    assert not compile_matcher("", "Event", selector)(CORE_EVENT)


@pytest.mark.parametrize(
    ("group", "kind", "text", "expected"),
    [
        ("", "Pod", "metadata.name=web", True),
        ("", "Pod", "metadata.name=other", False),
        ("", "Pod", "spec.nodeName=node1,status.phase!=Succeeded,status.phase!=Failed", True),
        ("", "Pod", "spec.nodeName=", False),
        ("", "Pod", "spec.host=node1", True),  # old alias of spec.nodeName
        ("", "Pod", "spec.hostNetwork=false", True),
        ("", "Pod", "status.podIP=10.42.0.5", True),
        ("", "Pod", "status.podIPs=", True),  # accepted, never valued (as in Kubernetes)
        ("", "Pod", "status.hostIP=192.168.1.2", True),
        ("", "Pod", "", True),
        ("", "Event", "involvedObject.kind=Pod,involvedObject.apiVersion=v1,involvedObject.name=web", True),
        ("", "Event", "involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u-2", False),
        ("", "Event", "reason=Pulled,type=Normal,source=kubelet,reportingComponent=kubelet", True),
        ("events.k8s.io", "Event", "regarding.kind=Pod,regarding.name=web,reportingController=kubelet", True),
        ("events.k8s.io", "Event", "regarding.uid=u-1,type!=Warning", True),
    ],
)
def test_compiled_matcher(group: str, kind: str, text: str, expected: bool) -> None:
    obj = POD if kind == "Pod" else CORE_EVENT
    matcher = compile_matcher(group, kind, parse_field_selector(text))
    assert matcher(obj) is expected
    # The compiled form agrees with matching the full field set through the canonical selector.
    canonical = check_supported(group, kind, parse_field_selector(text))
    assert canonical.matches(field_set(group, kind, obj)) is expected


def test_events_k8s_io_reads_its_own_shape() -> None:
    selector = parse_field_selector("regarding.name=web,reportingController=default-scheduler,reason=Scheduled")
    assert compile_matcher("events.k8s.io", "Event", selector)(EVENTS_V1_EVENT)


def test_check_supported_rewrites_aliases() -> None:
    assert str(check_supported("", "Pod", parse_field_selector("spec.host=n1"))) == "spec.nodeName=n1"
    assert str(check_supported("events.k8s.io", "Event", parse_field_selector("regarding.kind=Pod"))) == (
        "involvedObject.kind=Pod")


@pytest.mark.parametrize(
    ("group", "kind", "label", "message"),
    [
        ("", "Pod", "status.foo", "field label not supported: status.foo"),
        ("", "Pod", "spec.containers", "field label not supported: spec.containers"),
        ("", "Node", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("", "Namespace", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("", "Event", "regarding.kind", "field label not supported: regarding.kind"),
        ("events.k8s.io", "Event", "involvedObject.kind", "field label not supported: involvedObject.kind"),
        ("", "Service", "spec.ports", "field label not supported: spec.ports"),
        ("batch", "Job", "status.succeeded", 'field label "status.succeeded" not supported for batchv1.Job'),
        ("apps", "Deployment", "status.replicas",
         '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        ("", "ConfigMap", "data", '"data" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        ("apps", "ReplicaSet", "spec.replicas",
         '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ],
)
def test_unsupported_labels(group: str, kind: str, label: str, message: str) -> None:
    selector = parse_field_selector(f"metadata.name=x,{label}=v")
    with pytest.raises(ValueError) as caught:
        check_supported(group, kind, selector)
    assert str(caught.value) == message
    with pytest.raises(ValueError):
        compile_matcher(group, kind, selector)
    assert label not in supported_fields(group, kind)


def test_supported_fields() -> None:
    assert supported_fields("", "Pod") >= {
        "metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
        "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
        "status.nominatedNodeName", "status.hostIP", "spec.host",
    }
    assert supported_fields("", "Node") == {"metadata.name", "spec.unschedulable"}
    assert supported_fields("", "Namespace") == {"metadata.name", "status.phase"}
    assert supported_fields("", "Secret") == {"metadata.name", "metadata.namespace", "type"}
    assert supported_fields("", "Service") == {"metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"}
    assert supported_fields("batch", "Job") == {"metadata.name", "metadata.namespace", "status.successful"}
    assert "status.replicas" in supported_fields("", "ReplicationController")
    assert "status.replicas" in supported_fields("apps", "ReplicaSet")
    assert supported_fields("apps", "StatefulSet") == {"metadata.name", "metadata.namespace"}
    assert supported_fields("", "Event") == {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
        "reportingComponent", "source", "type", "metadata.namespace", "metadata.name",
    }
    assert "regarding.name" in supported_fields("events.k8s.io", "Event")


def test_custom_resource_fields() -> None:
    spec = custom_resource_field_spec(True, [".spec.color", ".status.ready"])
    assert spec.supported == {"metadata.name", "metadata.namespace", "spec.color", "status.ready"}
    widget = {"metadata": {"name": "w", "namespace": "d"}, "spec": {"color": "red", "size": 3}, "status": {"ready": True}}
    assert spec.matcher(parse_field_selector("spec.color=red,status.ready=true"))(widget)
    assert not spec.matcher(parse_field_selector("spec.color=blue"))(widget)
    with pytest.raises(ValueError) as caught:
        spec.check(parse_field_selector("spec.size=3"))
    assert str(caught.value) == "field label not supported: spec.size"
    cluster_scoped = custom_resource_field_spec(False)
    with pytest.raises(ValueError) as caught:
        cluster_scoped.check(parse_field_selector("metadata.namespace=d"))
    assert str(caught.value) == "field label not supported: metadata.namespace"
