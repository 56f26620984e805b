"""A ReplicaSet's (or ReplicationController's) ``status`` from its pods, and when to look at it again.

``calculate_status`` counts the claimed active pods (fully labeled, ready, available after
``minReadySeconds``) and keeps the ``ReplicaFailure`` condition in step with this round's error;
``recheck_after`` says when a ready pod will have become available, since nothing else wakes the owner then.
"""

from __future__ import annotations

from nanokube.api.errors import ApiError
from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON
from nanokube.util.timeutil import now as utcnow
from nanokube.util.timeutil import parse_rfc3339, rfc3339

from .pods import is_pod_available, is_pod_ready, pod_ready_condition


def status_only(new: JSON, old: JSON) -> bool:
    """Only ``status`` (or metadata nobody acts on) changed: same generation, owners and deletion state."""
    a, b = new["metadata"], old["metadata"]
    return (a.get("generation") == b.get("generation") and a.get("deletionTimestamp") == b.get("deletionTimestamp")
            and a.get("ownerReferences") == b.get("ownerReferences"))


def comparable(status: JSON) -> JSON:
    keys = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "terminatingReplicas",
            "conditions")
    return {k: status.get(k) or (0 if k != "conditions" else None) for k in keys}


def calculate_status(owner: JSON, pods: list[JSON], terminating: int | None, error: ApiError | None) -> JSON:
    """The new ``status`` from the claimed active pods (and the error of this round, if any)."""
    status = deep_copy(owner.get("status") or {})
    spec = owner.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    now = utcnow()
    wanted_labels = template_labels.items()
    fully_labeled = ready = available = 0
    for pod in pods:
        if wanted_labels <= (pod["metadata"].get("labels") or {}).items():
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            available += not min_ready or is_pod_available(pod, min_ready, now)
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
    if error is not None:
        if failure is None:
            diff = len(pods) - int(spec.get("replicas", 1))
            reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
            failure = {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                       "reason": reason, "message": error.message}
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    status.update(replicas=len(pods), fullyLabeledReplicas=fully_labeled, readyReplicas=ready,
                  availableReplicas=available)
    if terminating is not None:
        status["terminatingReplicas"] = terminating
    return status


def recheck_after(owner: JSON, pods: list[JSON]) -> float | None:
    """When a ready pod will have been ready for minReadySeconds, look again to count it available."""
    min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
    if not min_ready:
        return None
    now = utcnow().timestamp()
    waits = []
    for pod in pods:
        cond = pod_ready_condition(pod) or {}
        if cond.get("status") == "True" and cond.get("lastTransitionTime"):
            left = parse_rfc3339(cond["lastTransitionTime"]).timestamp() + min_ready - now
            if left >= 0:
                waits.append(left)
    return min(waits) + 0.1 if waits else None
