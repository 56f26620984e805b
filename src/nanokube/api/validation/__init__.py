"""Semantic validation of built-in kinds, as kube-apiserver's per-kind ``Validate``/``ValidateUpdate`` do it.

The API server calls, after defaulting:

* ``validate_create(group, kind, obj)`` on create,
* ``validate_update(group, kind, new, old)`` on update (it already copied status/allocated fields),

and turns a non-empty result into ``errors.Invalid(kind, group, name, causes)`` (HTTP 422). Each FieldError
carries kube's field path (``spec.template.spec.containers[0].image``) and wording, so kubectl prints what it
prints against a real cluster. Objects are plain dicts in their v1 JSON shape; nothing here mutates them.

Kinds without rules of their own (and unknown kinds) get ObjectMeta validation only; custom resources use
``validate_metadata_only``. The per-kind rules live in one module per group, and ``meta``/``podspec`` hold
the pieces they share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nanokube.api.errors import FieldError
from nanokube.api.registry import BUILTIN

from . import apps, batch, core, misc, pods, quota, services, storage
from .field import as_dict, as_str, not_supported, required
from .meta import name_is_dns_subdomain, validate_object_meta, validate_object_meta_update

Obj = dict[str, Any]
Create = Callable[[Obj], list[FieldError]]
Update = Callable[[Obj, Obj], list[FieldError]]

__all__ = ["validate_create", "validate_metadata_only", "validate_metadata_update", "validate_update"]


def _binding(obj: Obj) -> list[FieldError]:
    """``ValidatePodBinding``: a pods/binding body names its target node."""
    target = as_dict(obj.get("target"))
    errs = []
    kind = as_str(target.get("kind"))
    if kind and kind != "Node":
        errs.append(not_supported("target.kind", kind, ["Node", "<empty>"]))
    if not as_str(target.get("name")):
        errs.append(required("target.name"))
    return errs


_RULES: dict[tuple[str, str], tuple[Create, Update]] = {
    ("", "Pod"): (pods.create, pods.update),
    ("", "Service"): (services.create, services.update),
    ("", "ConfigMap"): (core.configmap_create, core.configmap_update),
    ("", "Secret"): (core.secret_create, core.secret_update),
    ("", "Namespace"): (core.namespace_create, core.namespace_update),
    ("", "ServiceAccount"): (core.serviceaccount_create, core.serviceaccount_update),
    ("", "Node"): (core.node_create, core.node_update),
    ("", "Endpoints"): (core.endpoints_create, core.endpoints_update),
    ("", "Event"): (core.event_create, core.event_update),
    ("", "ReplicationController"): (apps.replicationcontroller_create, apps.replicationcontroller_update),
    ("", "PersistentVolumeClaim"): (storage.pvc_create, storage.pvc_update),
    ("", "PersistentVolume"): (storage.pv_create, storage.pv_update),
    ("", "LimitRange"): (quota.limitrange_create, quota.limitrange_update),
    ("", "ResourceQuota"): (quota.resourcequota_create, quota.resourcequota_update),
    ("", "Binding"): (_binding, lambda new, old: _binding(new)),
    ("apps", "Deployment"): (apps.deployment_create, apps.deployment_update),
    ("apps", "ReplicaSet"): (apps.replicaset_create, apps.replicaset_update),
    ("apps", "StatefulSet"): (apps.statefulset_create, apps.statefulset_update),
    ("apps", "DaemonSet"): (apps.daemonset_create, apps.daemonset_update),
    ("apps", "ControllerRevision"): (apps.controllerrevision_create, apps.controllerrevision_update),
    ("batch", "Job"): (batch.job_create, batch.job_update),
    ("batch", "CronJob"): (batch.cronjob_create, batch.cronjob_update),
    ("storage.k8s.io", "StorageClass"): (storage.storageclass_create, storage.storageclass_update),
    ("rbac.authorization.k8s.io", "Role"): (misc.role_create, misc.role_update),
    ("rbac.authorization.k8s.io", "ClusterRole"): (misc.clusterrole_create, misc.clusterrole_update),
    ("rbac.authorization.k8s.io", "RoleBinding"): (misc.rolebinding_create, misc.rolebinding_update),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (misc.clusterrolebinding_create,
                                                          misc.clusterrolebinding_update),
    ("policy", "PodDisruptionBudget"): (misc.pdb_create, misc.pdb_update),
    ("coordination.k8s.io", "Lease"): (misc.lease_create, misc.lease_update),
    ("discovery.k8s.io", "EndpointSlice"): (misc.endpointslice_create, misc.endpointslice_update),
    ("scheduling.k8s.io", "PriorityClass"): (misc.priorityclass_create, misc.priorityclass_update),
    ("events.k8s.io", "Event"): (misc.events_event_create, misc.events_event_update),
}

# Review requests are answered, not stored: they carry no metadata requirements.
_UNSTORED = {(r.group, r.kind) for r in BUILTIN if not r.stored}
_NAMESPACED = {(r.group, r.kind): r.namespaced for r in BUILTIN}


def validate_create(group: str, kind: str, obj: Obj) -> list[FieldError]:
    """Errors that make a create of this (defaulted) object invalid; empty when it may be stored."""
    if (group, kind) in _UNSTORED:
        return []
    rules = _RULES.get((group, kind))
    if rules is not None:
        return rules[0](obj)
    return validate_metadata_only(obj, namespaced=_namespaced(group, kind, obj))


def validate_update(group: str, kind: str, new: Obj, old: Obj) -> list[FieldError]:
    """Errors that make replacing ``old`` by ``new`` invalid (immutable fields, then ``new``'s own rules)."""
    if (group, kind) in _UNSTORED:
        return []
    rules = _RULES.get((group, kind))
    if rules is not None:
        return rules[1](new, old)
    return validate_metadata_update(new, old) + validate_metadata_only(new, _namespaced(group, kind, new))


def validate_metadata_only(obj: Obj, namespaced: bool) -> list[FieldError]:
    """ObjectMeta rules alone (name as a DNS-1123 subdomain): custom resources and kinds without rules."""
    return validate_object_meta(obj, namespaced, name_is_dns_subdomain)


def validate_metadata_update(new: Obj, old: Obj) -> list[FieldError]:
    """ObjectMeta update rules alone: name, namespace, uid and timestamps immutable, no new finalizers on delete."""
    return validate_object_meta_update(new, old)


def _namespaced(group: str, kind: str, obj: Obj) -> bool:
    known = _NAMESPACED.get((group, kind))
    if known is not None:
        return known
    return bool(as_dict(obj.get("metadata")).get("namespace"))

