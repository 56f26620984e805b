"""ObjectMeta validation for every kind, the dispatch, and how errors print (as kube prints them)."""

from __future__ import annotations

import pytest
from validation_helpers import JSON, created, deployment, meta, only, pod, texts, updated

from nanokube.api import validation
from nanokube.api.errors import Invalid


def configmap(**metadata: object) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default", **metadata}}


def test_valid_objects_pass() -> None:
    assert created("", "ConfigMap", configmap()) == []
    assert created("", "Pod", pod()) == []
    assert created("apps", "Deployment", deployment()) == []


def test_name_or_generate_name_is_required() -> None:
    body = configmap()
    del body["metadata"]["name"]
    err = only(created("", "ConfigMap", body))
    assert (err.kind, err.field) == ("Required", "metadata.name")
    assert err.message_with_field() == "metadata.name: Required value: name or generateName is required"
    body["metadata"]["generateName"] = "cfg-"
    assert texts(created("", "ConfigMap", body)) == ["metadata.name: Required value: name or generateName is required"]
    body["metadata"]["generateName"] = "Bad_"
    assert any(e.field == "metadata.generateName" and e.kind == "Invalid" for e in created("", "ConfigMap", body))


def test_subdomain_names() -> None:
    err = created("", "ConfigMap", configmap(name="Web_Config"))[0]
    assert err.message_with_field() == (
        'metadata.name: Invalid value: "Web_Config": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
        "[a-z0-9])?)*')")
    assert created("", "ConfigMap", configmap(name="web.config-1")) == []


@pytest.mark.parametrize(("group", "kind", "namespaced", "name", "expected_start"), [
    ("", "Namespace", False, "my.ns", 'metadata.name: Invalid value: "my.ns": must not contain dots'),
    ("", "Service", True, "1web", 'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of'),
    ("apps", "StatefulSet", True, "db.primary", 'metadata.name: Invalid value: "db.primary": must not contain dots'),
    ("rbac.authorization.k8s.io", "Role", True, "a/b", "metadata.name: Invalid value: \"a/b\": may not contain '/'"),
])
def test_name_rule_per_kind(group: str, kind: str, namespaced: bool, name: str, expected_start: str) -> None:
    obj: JSON = {"metadata": meta(name, "default" if namespaced else None)}
    messages = [m for m in texts(validation.validate_create(group, kind, obj)) if m.startswith("metadata.name")]
    assert messages and messages[0].startswith(expected_start)


def test_node_and_rbac_names_allow_what_kube_allows() -> None:
    assert [e for e in validation.validate_create("", "Node", {"metadata": {"name": "node-1.example.com"}})
            if e.field == "metadata.name"] == []
    role = {"metadata": meta("system:controller:foo"), "rules": []}
    assert validation.validate_create("rbac.authorization.k8s.io", "Role", role) == []


def test_namespace_required_or_forbidden() -> None:
    err = only(validation.validate_create("", "ConfigMap", {"metadata": {"name": "x"}}))
    assert err.message_with_field() == "metadata.namespace: Required value"
    body = {"metadata": {"name": "x", "namespace": "default"}}
    err = only(validation.validate_create("", "Namespace", body))
    assert err.message_with_field() == "metadata.namespace: Forbidden: not allowed on this type"
    assert validation.validate_create("", "Namespace", {"metadata": {"name": "x"}}) == []


def test_labels_keys_and_values() -> None:
    err = only(created("", "ConfigMap", configmap(labels={"app": "web!"})))
    assert err.field == "metadata.labels" and err.kind == "Invalid"
    assert err.message_with_field().startswith(
        'metadata.labels: Invalid value: "web!": a valid label must be an empty string or consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character")
    err = only(created("", "ConfigMap", configmap(labels={"-bad": "x"})))
    assert err.message_with_field().startswith('metadata.labels: Invalid value: "-bad": name part must consist of')
    assert created("", "ConfigMap", configmap(labels={"example.com/tier": "front_end-1", "empty": ""})) == []


def test_annotations_keys_and_total_size() -> None:
    err = only(created("", "ConfigMap", configmap(annotations={"a/b/c": "x"})))
    assert err.field == "metadata.annotations" and err.message().startswith('Invalid value: "a/b/c": a valid label key')
    big = configmap(annotations={"big": "x" * (256 * 1024)})
    err = only(created("", "ConfigMap", big))
    assert err.message_with_field() == "metadata.annotations: Too long: may not be more than 262144 bytes"
    assert created("", "ConfigMap", configmap(annotations={"Example.com/UPPER": "ok"})) == []


def test_finalizers() -> None:
    err = only(created("", "ConfigMap", configmap(finalizers=["cleanup"])))
    assert err.message_with_field() == ('metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard '
                                        "finalizer name nor is it fully qualified")
    both = created("", "ConfigMap", configmap(finalizers=["orphan", "foregroundDeletion"]))
    assert texts(both) == ['metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: finalizer orphan '
                           "and foregroundDeletion cannot be both set"]
    assert created("", "ConfigMap", configmap(finalizers=["example.com/cleanup", "kubernetes"])) == []


def test_owner_references() -> None:
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": ""},
            {"apiVersion": "", "kind": "Deployment", "name": "d", "uid": "u"}]
    assert texts(created("", "ConfigMap", configmap(ownerReferences=refs))) == [
        "metadata.ownerReferences[0].uid: Required value: must not be empty",
        "metadata.ownerReferences[1].apiVersion: Required value: must not be empty",
    ]
    two = [{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
           {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True}]
    err = only(created("", "ConfigMap", configmap(ownerReferences=two)))
    assert err.field == "metadata.ownerReferences"
    assert err.detail == 'Only one reference can have Controller set to true. Found "true" in references for A/a and B/b'
    assert created("", "ConfigMap", configmap(ownerReferences=two[:1])) == []


def test_metadata_update_immutability() -> None:
    old = configmap(uid="u1", creationTimestamp="2026-01-01T00:00:00Z", generation=3)
    new = configmap(uid="u2", creationTimestamp="2026-01-01T00:00:00Z", generation=2)
    assert texts(updated("", "ConfigMap", new, old)) == [
        "metadata.generation: Invalid value: 2: must not be decremented",
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]
    renamed = configmap(name="other", uid="u1", creationTimestamp="2026-01-01T00:00:00Z", generation=3)
    assert texts(updated("", "ConfigMap", renamed, old)) == ['metadata.name: Invalid value: "other": field is immutable']
    moved = configmap(uid="u1", creationTimestamp="2026-01-01T00:00:00Z", generation=3)
    moved["metadata"]["namespace"] = "other"
    assert texts(updated("", "ConfigMap", moved, old)) == [
        'metadata.namespace: Invalid value: "other": field is immutable']
    assert updated("", "ConfigMap", old, old) == []


def test_no_new_finalizers_while_deleting() -> None:
    old = configmap(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["kubernetes"])
    new = configmap(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["kubernetes", "example.com/x"])
    err = only(updated("", "ConfigMap", new, old))
    assert err.message_with_field() == ('metadata.finalizers: Forbidden: no new finalizers can be added if the object '
                                        'is being deleted, found new finalizers []string{"example.com/x"}')
    assert updated("", "ConfigMap", configmap(deletionTimestamp="2026-01-01T00:00:00Z"), old) == []


def test_invalid_status_message_is_kubes() -> None:
    """The 422 body kubectl prints: kind, name and each cause as ``field: type: value: detail``."""
    body = deployment()
    body["spec"]["template"]["metadata"]["labels"] = {"app": "api", "tier": "be"}
    body["spec"]["replicas"] = -1
    errors = created("apps", "Deployment", body)
    message = Invalid("Deployment", "apps", "web", errors).message
    assert message == (
        'Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, '
        'spec.template.metadata.labels: Invalid value: {"app":"api","tier":"be"}: `selector` does not match '
        "template `labels`]")
    causes = Invalid("Deployment", "apps", "web", errors).to_status()["details"]["causes"]
    assert causes[0] == {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal "
                         "to 0", "field": "spec.replicas"}


def test_unknown_and_custom_kinds_get_metadata_rules_only() -> None:
    widget = {"metadata": {"name": "Bad Name", "namespace": "default"}, "spec": {"anything": True}}
    errs = validation.validate_create("example.com", "Widget", widget)
    assert [e.field for e in errs] == ["metadata.name"]
    assert validation.validate_metadata_only({"metadata": {"name": "ok"}}, namespaced=False) == []
    assert texts(validation.validate_metadata_only({"metadata": {"name": "ok"}}, namespaced=True)) == [
        "metadata.namespace: Required value"]
    review = {"spec": {"resourceAttributes": {"verb": "get"}}}
    assert validation.validate_create("authorization.k8s.io", "SelfSubjectAccessReview", review) == []


def test_pod_binding() -> None:
    assert texts(validation.validate_create("", "Binding", {"target": {"kind": "Pod"}})) == [
        'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"',
        "target.name: Required value",
    ]
    assert validation.validate_create("", "Binding", {"target": {"kind": "Node", "name": "n1"}}) == []
