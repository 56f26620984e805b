"""Per-kind defaulting, as kube-apiserver applies it when it decodes an object, plus create-time additions.

* ``apply(group, kind, obj)`` fills every field Kubernetes defaults (``SetDefaults_*`` of core, apps, batch,
  rbac, storage, scheduling and discovery, and for Pods the fields kube's default admission plugins add).
  The server calls it on create and on every update of the main resource; it only fills what is missing,
  so applying it twice changes nothing. A Job's generated selector needs ``metadata.uid`` to be set first.
* ``prepare_create(group, kind, obj)`` resets what a client may not set on create: the initial status (Pods
  start ``Pending`` with their QoS class, Namespaces ``Active`` with the ``kubernetes`` finalizer).

Both mutate the object in place (the caller passes its own copy). Unknown kinds and custom resources are
left alone. Cluster IPs, node ports and the service-account token volume are the server's to allocate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import apps, batch, core, misc
from .status import prepare_create, qos_class

__all__ = ["apply", "prepare_create", "qos_class"]

_DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("", "Pod"): core.pod,
    ("", "PodTemplate"): core.pod_template_object,
    ("", "Service"): core.service,
    ("", "Namespace"): core.namespace,
    ("", "Secret"): core.secret,
    ("", "PersistentVolume"): core.persistent_volume,
    ("", "PersistentVolumeClaim"): core.persistent_volume_claim,
    ("", "Endpoints"): core.endpoints,
    ("", "Node"): core.node,
    ("", "LimitRange"): core.limit_range,
    ("", "ResourceQuota"): core.resource_quota,
    ("", "ReplicationController"): core.replication_controller,
    ("apps", "Deployment"): apps.deployment,
    ("apps", "ReplicaSet"): apps.replica_set,
    ("apps", "StatefulSet"): apps.stateful_set,
    ("apps", "DaemonSet"): apps.daemon_set,
    ("batch", "Job"): batch.job,
    ("batch", "CronJob"): batch.cron_job,
    ("rbac.authorization.k8s.io", "RoleBinding"): misc.role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): misc.role_binding,
    ("storage.k8s.io", "StorageClass"): misc.storage_class,
    ("scheduling.k8s.io", "PriorityClass"): misc.priority_class,
    ("discovery.k8s.io", "EndpointSlice"): misc.endpoint_slice,
}


def apply(group: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill in kube's defaults for this kind, in place. Objects that are not dicts are left alone."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)
