"""A StatefulSet Pod's identity and state, as ``stateful_set_utils.go`` reads them (no I/O).

A member Pod is named ``<set>-<ordinal>``, carries the ``statefulset.kubernetes.io/pod-name``,
``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` labels, has ``hostname``/``subdomain`` set when
created, and mounts one claim per ``volumeClaimTemplates`` entry, named ``<template>-<set>-<ordinal>``. The
predicates at the bottom (created, ready, available, terminating) are the ones the ordering rules are written in.
Pods that are not yet created are represented by the object the controller would create: it has no status phase.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339

API_VERSION = "apps/v1"
KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
_MEMBER_NAME = re.compile(r"^(.*)-([0-9]+)$")
_MAX_INT32 = 2**31 - 1


# -- names and ordinals -----------------------------------------------------------------------------------
def parent_and_ordinal(pod: JSON) -> tuple[str, int]:
    """The set a Pod's name says it belongs to and its ordinal; ("", -1) for a name of another shape."""
    found = _MEMBER_NAME.match(pod["metadata"].get("name", ""))
    if found is None:
        return "", -1
    number = int(found.group(2))
    return found.group(1), number if number <= _MAX_INT32 else -1


def ordinal(pod: JSON) -> int:
    return parent_and_ordinal(pod)[1]


def spec(sts: JSON) -> JSON:
    return sts.get("spec") or {}


def replicas(sts: JSON) -> int:
    value = spec(sts).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: JSON) -> int:
    return int((spec(sts).get("ordinals") or {}).get("start") or 0)


def in_ordinal_range(pod: JSON, sts: JSON) -> bool:
    start = start_ordinal(sts)
    return start <= ordinal(pod) < start + replicas(sts)


def pod_name(sts: JSON, number: int) -> str:
    return f"{sts['metadata']['name']}-{number}"


def claim_name(sts: JSON, template: JSON, number: int) -> str:
    return f"{(template.get('metadata') or {}).get('name', '')}-{sts['metadata']['name']}-{number}"


def is_member(sts: JSON, pod: JSON) -> bool:
    return parent_and_ordinal(pod)[0] == sts["metadata"]["name"]


def claim_templates(sts: JSON) -> list[JSON]:
    return [t for t in spec(sts).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def allows_burst(sts: JSON) -> bool:
    return spec(sts).get("podManagementPolicy") == "Parallel"


def min_ready_seconds(sts: JSON) -> int:
    return int(spec(sts).get("minReadySeconds") or 0)


# -- owner references -------------------------------------------------------------------------------------
def owner_reference(sts: JSON) -> JSON:
    """``metav1.NewControllerRef`` to the set: what its Pods (and, by policy, claims) carry."""
    return {"apiVersion": API_VERSION, "kind": KIND, "name": sts["metadata"]["name"],
            "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def controller_ref(obj: JSON) -> JSON | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


# -- identity and storage ---------------------------------------------------------------------------------
def identity_matches(sts: JSON, pod: JSON) -> bool:
    parent, number = parent_and_ordinal(pod)
    meta = pod["metadata"]
    return (number >= 0 and parent == sts["metadata"]["name"] and meta.get("name") == pod_name(sts, number)
            and meta.get("namespace", "") == sts["metadata"].get("namespace", "")
            and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name"))


def storage_matches(sts: JSON, pod: JSON) -> bool:
    number = ordinal(pod)
    if number < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for template in claim_templates(sts):
        volume = volumes.get((template.get("metadata") or {}).get("name"))
        source = (volume or {}).get("persistentVolumeClaim") or {}
        if source.get("claimName") != claim_name(sts, template, number):
            return False
    return True


def claims_for(sts: JSON, number: int) -> dict[str, JSON]:
    """The claims a member with ``number`` uses, by template name: the template with the member's name and the
    set's ``selector.matchLabels`` added to its labels."""
    match_labels = (spec(sts).get("selector") or {}).get("matchLabels") or {}
    claims: dict[str, JSON] = {}
    for template in claim_templates(sts):
        tmeta = template.get("metadata") or {}
        meta: JSON = {"name": claim_name(sts, template, number),
                      "namespace": sts["metadata"].get("namespace", ""),
                      "labels": {**(tmeta.get("labels") or {}), **match_labels}}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        claims[tmeta.get("name", "")] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                                         "spec": deep_copy(template.get("spec") or {})}
    return claims


def update_storage(sts: JSON, pod: JSON) -> None:
    """Point the Pod's volumes at its claims, replacing any volume of the same name as a claim template."""
    pod_spec = pod.setdefault("spec", {})
    claims = claims_for(sts, ordinal(pod))
    volumes: list[Any] = [{"name": name, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
                          for name, claim in claims.items()]
    volumes += [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
    pod_spec["volumes"] = volumes


def update_identity(sts: JSON, pod: JSON) -> None:
    number = ordinal(pod)
    meta = pod["metadata"]
    meta["name"] = pod_name(sts, number)
    meta["namespace"] = sts["metadata"].get("namespace", "")
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(number)


def new_pod(sts: JSON, number: int) -> JSON:
    """The Pod the set wants at ``number`` (``newStatefulSetPod``), not yet labelled with a revision."""
    template = spec(sts).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: JSON = {"name": pod_name(sts, number), "namespace": sts["metadata"].get("namespace", ""),
                  "labels": dict(tmeta.get("labels") or {}), "ownerReferences": [owner_reference(sts)]}
    for field in ("annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = deep_copy(tmeta[field])
    pod: JSON = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": deep_copy(template.get("spec") or {})}
    update_identity(sts, pod)
    pod["spec"]["hostname"] = meta["name"]  # set once, at creation (immutable afterwards)
    service = spec(sts).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    update_storage(sts, pod)
    return pod


def new_versioned_pod(current_set: JSON, update_set: JSON, current_revision: str, update_revision: str,
                      number: int) -> JSON:
    """``newVersionedStatefulSetPod``: below the partition a new Pod is made at the current revision, else at
    the update revision (OnDelete always makes new Pods at the update revision)."""
    strategy = spec(current_set).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    start = start_ordinal(current_set)
    current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
    keep_current = (strategy.get("type") == "RollingUpdate" and rolling is None
                    and number < start + current_replicas) or (
        rolling is not None and number < start + int(rolling.get("partition") or 0))
    pod = new_pod(current_set if keep_current else update_set, number)
    set_revision(pod, current_revision if keep_current else update_revision)
    return pod


def revision_of(pod: JSON) -> str:
    return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL, "")


def set_revision(pod: JSON, revision: str) -> None:
    pod["metadata"].setdefault("labels", {})[REVISION_LABEL] = revision


# -- state ------------------------------------------------------------------------------------------------
def phase(pod: JSON) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: JSON) -> bool:
    return phase(pod) != ""


def is_terminating(pod: JSON) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _ready_condition(pod: JSON) -> JSON | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: JSON) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_running_and_ready(pod: JSON) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def is_healthy(pod: JSON) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def available_in(pod: JSON, min_ready: int, now: datetime) -> float | None:
    """Seconds until the Pod counts as available (0: it is); None when it is not ready at all."""
    cond = _ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    if not min_ready:
        return 0.0
    since = cond.get("lastTransitionTime")
    if not since:
        return None
    left = parse_rfc3339(since).timestamp() + min_ready - now.timestamp()
    return left if left > 0 else 0.0


def is_available(pod: JSON, min_ready: int, now: datetime) -> bool:
    return available_in(pod, min_ready, now) == 0.0


def is_unavailable(pod: JSON, min_ready: int, now: datetime) -> bool:
    return not is_available(pod, min_ready, now) or is_terminating(pod)
