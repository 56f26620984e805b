"""Defaults of the smaller groups: RBAC bindings, StorageClass, PriorityClass, EndpointSlice.

Kinds not named here (Lease, PodDisruptionBudget, ServiceAccount, events, ...) have no defaults in kube.
"""

from __future__ import annotations

from .podspec import JSON, dicts, ensure

RBAC_GROUP = "rbac.authorization.k8s.io"


def role_binding(obj: JSON) -> None:
    """``roleRef.apiGroup`` and each subject's ``apiGroup`` (``""`` for ServiceAccounts, RBAC's otherwise)."""
    role_ref = ensure(obj, "roleRef")
    if not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = RBAC_GROUP
    for subject in dicts(obj.get("subjects")):
        if subject.get("apiGroup"):
            continue
        if subject.get("kind") == "ServiceAccount":
            subject["apiGroup"] = ""
        elif subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def storage_class(obj: JSON) -> None:
    if not obj.get("reclaimPolicy"):
        obj["reclaimPolicy"] = "Delete"
    if not obj.get("volumeBindingMode"):
        obj["volumeBindingMode"] = "Immediate"


def priority_class(obj: JSON) -> None:
    if not obj.get("preemptionPolicy"):
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def endpoint_slice(obj: JSON) -> None:
    for port in dicts(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"
