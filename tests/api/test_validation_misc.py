"""RBAC, PodDisruptionBudget, Lease, EndpointSlice, PriorityClass, StorageClass, events.k8s.io Event."""

from __future__ import annotations

from validation_helpers import JSON, created, meta, only, texts, updated

RBAC = "rbac.authorization.k8s.io"


def binding(namespaced: bool = True, **body: object) -> JSON:
    obj: JSON = {"metadata": meta("read-pods", "default" if namespaced else None),
                 "roleRef": {"kind": "Role" if namespaced else "ClusterRole", "name": "reader"},
                 "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}
    obj.update(body)
    return obj


def test_role_rules() -> None:
    role = {"metadata": meta("reader"), "rules": [{"resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]}
    assert texts(created(RBAC, "Role", role)) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        'rules[1].nonResourceURLs: Invalid value: ["/x"]: namespaced rules cannot apply to non-resource URLs',
    ]
    ok = {"metadata": meta("reader"), "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
    assert created(RBAC, "Role", ok) == []
    cluster = {"metadata": meta("health", None), "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}
    assert created(RBAC, "ClusterRole", cluster) == []


def test_bindings() -> None:
    assert created(RBAC, "RoleBinding", binding()) == []
    assert created(RBAC, "ClusterRoleBinding", binding(False)) == []
    bad = binding(roleRef={"apiGroup": "example.com", "kind": "Policy", "name": ""},
                  subjects=[{"kind": "Robot", "name": "r"}, {"kind": "User", "name": ""}])
    assert texts(created(RBAC, "RoleBinding", bad)) == [
        'roleRef.apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Policy": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        "subjects[1].name: Required value",
    ]
    no_ns = binding(False, subjects=[{"kind": "ServiceAccount", "name": "default"}])
    assert texts(created(RBAC, "ClusterRoleBinding", no_ns)) == ["subjects[0].namespace: Required value"]


def test_role_ref_cannot_change() -> None:
    old = binding()
    new = binding(roleRef={"kind": "Role", "name": "writer"})
    err = only(updated(RBAC, "RoleBinding", new, old))
    assert (err.kind, err.field, err.detail) == ("Invalid", "roleRef", "cannot change roleRef")
    assert err.message().startswith('Invalid value: {"kind":"Role","name":"writer"')
    assert updated(RBAC, "RoleBinding", binding(subjects=[]), old) == []


def test_pod_disruption_budget() -> None:
    both = {"metadata": meta("pdb"), "spec": {"minAvailable": 1, "maxUnavailable": "200%",
                                               "selector": {"matchLabels": {"app": "web"}}}}
    assert texts(created("policy", "PodDisruptionBudget", both)) == [
        'spec: Invalid value: {"minAvailable":1,"maxUnavailable":"200%","selector":{"matchLabels":{"app":"web"}}}: '
        "minAvailable and maxUnavailable cannot be both set",
        'spec.maxUnavailable: Invalid value: "200%": must not be greater than 100%',
    ]
    ok = {"metadata": meta("pdb"), "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}}
    assert created("policy", "PodDisruptionBudget", ok) == []


def test_lease() -> None:
    lease = {"metadata": meta("node-1", "kube-node-lease"), "spec": {"leaseDurationSeconds": 0}}
    assert texts(created("coordination.k8s.io", "Lease", lease)) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    lease["spec"] = {"holderIdentity": "node-1", "leaseDurationSeconds": 40}
    assert created("coordination.k8s.io", "Lease", lease) == []


def test_endpoint_slice() -> None:
    eps = {"metadata": meta("web-abc"), "addressType": "IPv5", "endpoints": [{"addresses": []}],
           "ports": [{"port": 80, "protocol": "HTTP"}]}
    assert texts(created("discovery.k8s.io", "EndpointSlice", eps)) == [
        'addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
        "endpoints[0].addresses: Required value: must contain at least 1 address",
        'ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ]
    ok = {"metadata": meta("web-abc"), "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.7"]}],
          "ports": [{"port": 80, "name": "http"}]}
    assert created("discovery.k8s.io", "EndpointSlice", ok) == []
    changed = dict(ok, addressType="IPv6")
    assert texts(updated("discovery.k8s.io", "EndpointSlice", changed, ok))[-1] == (
        'addressType: Invalid value: "IPv6": field is immutable')


def test_priority_class() -> None:
    too_high = {"metadata": {"name": "urgent"}, "value": 2000000000}
    assert texts(created("scheduling.k8s.io", "PriorityClass", too_high)) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    reserved = {"metadata": {"name": "system-mine"}, "value": 10}
    assert texts(created("scheduling.k8s.io", "PriorityClass", reserved)) == [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
        "error: priority class system-mine is not a known system priority class"]
    ok = {"metadata": {"name": "high"}, "value": 1000}
    assert created("scheduling.k8s.io", "PriorityClass", ok) == []
    assert texts(updated("scheduling.k8s.io", "PriorityClass", dict(ok, value=5), ok)) == [
        "value: Forbidden: may not be changed in an update."]


def test_storage_class() -> None:
    assert texts(created("storage.k8s.io", "StorageClass", {"metadata": {"name": "fast"}, "reclaimPolicy": "Recycle"})) \
        == ["provisioner: Required value",
            'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']
    sc = {"metadata": {"name": "fast"}, "provisioner": "rancher.io/local-path", "parameters": {"a": "1"}}
    assert created("storage.k8s.io", "StorageClass", sc) == []
    assert texts(updated("storage.k8s.io", "StorageClass", dict(sc, parameters={"a": "2"}), sc)) == [
        "parameters: Forbidden: updates to parameters are forbidden."]


def test_events_k8s_io_event() -> None:
    assert texts(created("events.k8s.io", "Event", {"metadata": meta("e.1"), "type": "Info"})) == [
        "eventTime: Required value", "reportingController: Required value", "reportingInstance: Required value",
        "action: Required value", "reason: Required value", 'type: Invalid value: "": has invalid value: Info',
    ]
    ok = {"metadata": meta("e.1"), "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "kubelet",
          "reportingInstance": "node-1", "action": "Pulling", "reason": "Pulling", "type": "Normal"}
    assert created("events.k8s.io", "Event", ok) == []
