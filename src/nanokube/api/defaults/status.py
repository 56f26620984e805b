"""What kube's create strategies put in a new object besides defaults: its initial status, a Namespace's
``kubernetes`` finalizer. Clients may not set status on create, so each kind starts from the status Go would
serialize for its zero value (``replicas: 0`` for a ReplicaSet, ``phase: Pending`` plus the QoS class for a
Pod, ``loadBalancer: {}`` for a Service). The fields the OpenAPI schema marks required are always present, so
the Python client's models accept the object before any controller touched it.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from nanokube.api.quantity import parse_quantity

from .core import namespace_create
from .podspec import JSON, dicts, sub

_QOS_RESOURCES = ("cpu", "memory")

_INITIAL_STATUS: dict[tuple[str, str], Callable[[], JSON]] = {
    ("apps", "Deployment"): dict,
    ("apps", "ReplicaSet"): lambda: {"replicas": 0},
    ("apps", "StatefulSet"): lambda: {"replicas": 0, "availableReplicas": 0},
    ("apps", "DaemonSet"): lambda: {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                    "desiredNumberScheduled": 0, "numberReady": 0},
    ("", "ReplicationController"): lambda: {"replicas": 0},
    ("batch", "Job"): dict,
    ("batch", "CronJob"): dict,
    ("", "Service"): lambda: {"loadBalancer": {}},
    ("", "PersistentVolumeClaim"): lambda: {"phase": "Pending"},
    ("", "PersistentVolume"): lambda: {"phase": "Pending"},
    ("", "ResourceQuota"): dict,
    ("policy", "PodDisruptionBudget"): lambda: {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                                "expectedPods": 0},
}


def prepare_create(group: str, kind: str, obj: JSON) -> None:
    """Reset status to the kind's initial one (Pods: Pending + QoS); add create-only fields."""
    if (group, kind) == ("", "Pod"):
        spec = sub(obj, "spec") or {}
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
    elif (group, kind) == ("", "Namespace"):
        namespace_create(obj)
    elif (group, kind) in _INITIAL_STATUS:
        obj["status"] = _INITIAL_STATUS[(group, kind)]()


def _quantity(value: Any) -> Fraction:
    try:
        return parse_quantity(value)
    except (ValueError, TypeError):
        return Fraction(0)


def qos_class(spec: JSON) -> str:
    """``qos.GetPodQOS``: Guaranteed, Burstable or BestEffort from cpu/memory requests and limits."""
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    pod_resources = sub(spec, "resources")
    if pod_resources is not None and (pod_resources.get("requests") or pod_resources.get("limits")):
        containers: list[JSON] = [{"resources": pod_resources}]
    else:
        containers = dicts(spec.get("initContainers")) + dicts(spec.get("containers"))
    for ctr in containers:
        resources = sub(ctr, "resources") or {}
        # Requests default to limits on a Pod; count them so the result does not depend on defaulting order.
        effective = {**(sub(resources, "limits") or {}), **(sub(resources, "requests") or {})}
        for name, value in effective.items():
            amount = _quantity(value)
            if name in _QOS_RESOURCES and amount != 0:
                requests[name] = requests.get(name, Fraction(0)) + amount
        found = set()
        for name, value in (sub(resources, "limits") or {}).items():
            amount = _quantity(value)
            if name in _QOS_RESOURCES and amount != 0:
                found.add(name)
                limits[name] = limits.get(name, Fraction(0)) + amount
        if found != set(_QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == amount for name, amount in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
