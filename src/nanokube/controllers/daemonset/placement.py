"""Which nodes a DaemonSet runs on, and how its pods are pinned to them.

``node_should_run(node, ds)`` is kube's ``NodeShouldRunDaemonPod``: the DaemonSet's pod (with the default
daemon tolerations added) must fit the node's name, ``nodeSelector`` and required node affinity, and tolerate the
node's NoSchedule and NoExecute taints to *start* there; a pod already there may *stay* as long as every
NoExecute taint is tolerated. Node readiness and resources are not looked at: since kube 1.12 the default
scheduler places daemon pods, pinned to their node by a ``matchFields`` term on ``metadata.name``
(``pin_to_node``), and ``target_node`` reads that pin back from a pod that is not bound yet.

Controllers may not import the scheduler, so the node affinity and toleration predicates come from the shared
``nanokube.api.nodeaffinity`` and ``nanokube.api.taints``, which the scheduler's plugins use too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nanokube.api.nodeaffinity import NAME_FIELD, pod_fits_node
from nanokube.api.objects import deep_copy
from nanokube.api.taints import tolerates
from nanokube.client.interface import JSON

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

# What every daemon pod tolerates (``AddOrUpdateDaemonPodTolerations``): node problems never evict it (no
# tolerationSeconds), and pressure or cordoning never keeps it off its node.
_DEFAULT_TOLERATIONS: tuple[tuple[str, str], ...] = (
    (NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute"), (DISK_PRESSURE, "NoSchedule"),
    (MEMORY_PRESSURE, "NoSchedule"), (PID_PRESSURE, "NoSchedule"), (UNSCHEDULABLE, "NoSchedule"))


def default_tolerations(host_network: bool) -> list[JSON]:
    """The tolerations the DaemonSet controller adds to each of its pods (network-unavailable only for
    hostNetwork pods, which do not need the pod network to come up)."""
    pairs = list(_DEFAULT_TOLERATIONS)
    if host_network:
        pairs.append((NETWORK_UNAVAILABLE, "NoSchedule"))
    return [{"key": key, "operator": "Exists", "effect": effect} for key, effect in pairs]


def add_daemon_tolerations(spec: JSON) -> None:
    """Add the default daemon tolerations to a pod spec in place, replacing a toleration with the same key,
    operator, value and effect (``AddOrUpdateTolerationInPodSpec``) so none appears twice."""
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    for wanted in default_tolerations(bool(spec.get("hostNetwork"))):
        for i, have in enumerate(tolerations):
            if _same_toleration(have, wanted):
                tolerations[i] = wanted
                break
        else:
            tolerations.append(wanted)
    spec["tolerations"] = tolerations


def _same_toleration(a: JSON, b: JSON) -> bool:
    return all((a.get(f) or "") == (b.get(f) or "") for f in ("key", "operator", "value", "effect"))


def untolerated_taint(taints: Iterable[JSON], tolerations: list[JSON], effects: tuple[str, ...]) -> JSON | None:
    """The first taint with one of ``effects`` that no toleration tolerates (``FindMatchingUntoleratedTaint``)."""
    for taint in taints:
        if isinstance(taint, dict) and taint.get("effect") in effects \
                and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def daemon_pod_spec(ds: JSON) -> JSON:
    """The DaemonSet's pod spec as its pods will carry it: the template's spec plus the default tolerations."""
    spec: JSON = deep_copy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    add_daemon_tolerations(spec)
    return spec


def node_should_run(node: JSON, ds: JSON, spec: JSON | None = None) -> tuple[bool, bool]:
    """(should run, should continue running) for the DaemonSet on ``node``; pass ``spec`` (``daemon_pod_spec``)
    to avoid rebuilding it for every node."""
    if spec is None:
        spec = daemon_pod_spec(ds)
    name = (node.get("metadata") or {}).get("name", "")
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not pod_fits_node(spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    if untolerated_taint(taints, tolerations, ("NoSchedule", "NoExecute")) is None:
        return True, True
    return False, untolerated_taint(taints, tolerations, ("NoExecute",)) is None


def pin_to_node(affinity: JSON | None, node_name: str) -> JSON:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: the affinity with its required node terms replaced by one
    term matching only ``node_name`` (any other required terms were already checked against that node)."""
    out: JSON = deep_copy(affinity) if affinity else {}
    node_affinity = out.setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    required["nodeSelectorTerms"] = [{"matchFields": [
        {"key": NAME_FIELD, "operator": "In", "values": [node_name]}]}]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    return out


def target_node(pod: JSON) -> str | None:
    """``GetTargetNodeName``: the node a daemon pod runs on, or is pinned to before it is bound."""
    spec: dict[str, Any] = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in (term or {}).get("matchFields") or []:
            if field.get("key") == NAME_FIELD and field.get("operator") == "In":
                values = field.get("values") or []
                return str(values[0]) if len(values) == 1 else None
    return None
