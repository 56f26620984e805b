"""What the Job controller reads off Pods: phase, readiness, deletion, the tracking finalizer, finish times,
owner references, and the order in which active Pods are given up (``controller.ActivePods``).

Pure functions over Pod dicts so the sync code above them reads like kube's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
_EPOCH = datetime.fromtimestamp(0).astimezone()


def meta(obj: JSON) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def status(obj: JSON) -> dict[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, dict) else {}


def phase(pod: JSON) -> str:
    return str(status(pod).get("phase") or "")


def uid(obj: JSON) -> str:
    return str(meta(obj).get("uid") or "")


def deleting(obj: JSON) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_active(pod: JSON) -> bool:
    """Neither finished nor being deleted (``controller.FilterActivePods``)."""
    return phase(pod) not in ("Succeeded", "Failed") and not deleting(pod)


def is_terminating(pod: JSON) -> bool:
    return deleting(pod) and phase(pod) not in ("Succeeded", "Failed")


def condition(pod: JSON, kind: str) -> dict[str, Any] | None:
    for cond in status(pod).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: JSON) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def has_tracking_finalizer(pod: JSON) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def controller_ref(obj: JSON) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def finished_time(pod: JSON) -> datetime:
    """When the Pod finished: its last container's finish, else when it stopped being Ready, else the moment
    its deletion began, else its creation (kube's ``getFinishedTime``)."""
    latest: datetime | None = None
    statuses = status(pod).get("containerStatuses") or []
    for cs in statuses:
        terminated = ((cs or {}).get("state") or {}).get("terminated")
        finished = _time((terminated or {}).get("finishedAt"))
        if finished is None:
            latest = None
            break
        latest = finished if latest is None or finished > latest else latest
    if latest is not None:
        return latest
    ready = condition(pod, "Ready")
    if ready is not None and ready.get("status") == "False":
        changed = _time(ready.get("lastTransitionTime"))
        if changed is not None:
            return changed
    deleted = _time(meta(pod).get("deletionTimestamp"))
    if deleted is not None:
        return deleted - timedelta(seconds=int(meta(pod).get("deletionGracePeriodSeconds") or 0))
    return _time(meta(pod).get("creationTimestamp")) or _EPOCH


def removal_order(pod: JSON) -> tuple[Any, ...]:
    """Sort key putting the Pods cheapest to lose first: unscheduled before scheduled, pending before
    running, not ready before ready, ready for less time first, more restarts first, newer first."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0)
    ready = is_ready(pod)
    ready_since = 0.0
    if ready:
        since = _time((condition(pod, "Ready") or {}).get("lastTransitionTime"))
        ready_since = since.timestamp() if since else 0.0
    restarts = max((int((cs or {}).get("restartCount") or 0) for cs in status(pod).get("containerStatuses") or []),
                   default=0)
    created = _time(meta(pod).get("creationTimestamp"))
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        phase_rank,
        1 if ready else 0,
        -ready_since,
        -restarts,
        -(created.timestamp() if created else float("inf")),
    )


def owner_reference(job: JSON) -> dict[str, Any]:
    """The controller reference a Job puts on its Pods (``metav1.NewControllerRef``)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta(job)["name"], "uid": uid(job),
            "controller": True, "blockOwnerDeletion": True}
