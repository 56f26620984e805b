"""Deployment status and conditions, as ``kubectl rollout status`` and ``describe`` read them.

``calculate_status`` sums the ReplicaSets into the Deployment's counts and sets ``Available``;
``rollout_status`` adds kube's ``Progressing`` bookkeeping (``NewReplicaSetAvailable`` once complete,
``ReplicaSetUpdated`` while progress is seen, ``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds``
without any) and carries a ReplicaSet's ``ReplicaFailure`` up. ``stuck_requeue`` says when to look again to
notice a deadline passing. All pure: the caller writes the result (kube's ``progress.go`` and ``sync.go``).
"""

from __future__ import annotations

from datetime import datetime

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON
from nanokube.util.timeutil import now as utcnow
from nanokube.util.timeutil import parse_rfc3339, rfc3339

from .util import (
    actual_count,
    available_count,
    max_unavailable,
    ready_count,
    replica_count,
    replicas,
    terminating_count,
)

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"
_NO_DEADLINE = 2**31 - 1
_COUNTS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
           "unavailableReplicas")


# -- conditions -------------------------------------------------------------------------------------------
def get_condition(status: JSON | None, kind: str) -> JSON | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def new_condition(kind: str, status: str, reason: str, message: str, now: datetime) -> JSON:
    at = rfc3339(now)
    return {"type": kind, "status": status, "lastUpdateTime": at, "lastTransitionTime": at, "reason": reason,
            "message": message}


def set_condition(status: JSON, cond: JSON) -> None:
    """Replace the condition of that type unless status and reason are unchanged; the transition time stays
    when only the reason changes."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime", cond["lastTransitionTime"])}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: JSON, kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: JSON) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and deadline != _NO_DEADLINE


# -- status -------------------------------------------------------------------------------------------------
def calculate_status(all_rses: list[JSON | None], new_rs: JSON | None, d: JSON) -> JSON:
    """The counts kubectl reads, ``Available`` by maxUnavailable, other conditions carried over."""
    old = d.get("status") or {}
    available = available_count(all_rses)
    status: JSON = {
        "observedGeneration": d["metadata"].get("generation", 0),
        "replicas": actual_count(all_rses),
        "updatedReplicas": actual_count([new_rs]),
        "readyReplicas": ready_count(all_rses),
        "availableReplicas": available,
        "unavailableReplicas": max(replica_count(all_rses) - available, 0),
    }
    status = {k: v for k, v in status.items() if v}  # kube omits zero counts
    terminating = terminating_count(all_rses)
    if terminating is not None:
        status["terminatingReplicas"] = terminating
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = deep_copy(old["conditions"])
    now = utcnow()
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.",
                                            now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def _count(status: JSON, key: str) -> int:
    return int(status.get(key) or 0)


def complete(d: JSON, status: JSON) -> bool:
    """Every replica updated and available, none old, and the latest spec observed."""
    want = replicas(d)
    return (_count(status, "updatedReplicas") == want and _count(status, "replicas") == want
            and _count(status, "availableReplicas") == want
            and _count(status, "observedGeneration") >= d["metadata"].get("generation", 0))


def progressing(d: JSON, new: JSON) -> bool:
    old = d.get("status") or {}
    old_old = _count(old, "replicas") - _count(old, "updatedReplicas")
    new_old = _count(new, "replicas") - _count(new, "updatedReplicas")
    return (_count(new, "updatedReplicas") > _count(old, "updatedReplicas") or new_old < old_old
            or _count(new, "readyReplicas") > _count(old, "readyReplicas")
            or _count(new, "availableReplicas") > _count(old, "availableReplicas"))


def timed_out(d: JSON, status: JSON, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = cond.get("lastUpdateTime")
    if not since:
        return False
    return parse_rfc3339(since).timestamp() + int(d["spec"]["progressDeadlineSeconds"]) < now.timestamp()


def rollout_status(d: JSON, all_rses: list[JSON | None], new_rs: JSON | None, now: datetime) -> JSON:
    """``syncRolloutStatus`` without the write: the status with ``Progressing`` and ``ReplicaFailure``."""
    status = calculate_status(all_rses, new_rs, d)
    deadline = has_progress_deadline(d)
    if not deadline:
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status"), PROGRESSING)
    done = (_count(status, "replicas") == _count(status, "updatedReplicas") and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE)
    subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{d["metadata"]["name"]}"'
    if deadline and not done:
        if complete(d, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                                f"{subject} has successfully progressed.", now))
        elif progressing(d, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif timed_out(d, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                                f"{subject} has timed out progressing.", now))
    failures = replica_failures(all_rses, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def replica_failures(all_rses: list[JSON | None], new_rs: JSON | None) -> list[JSON]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any, as Deployment conditions."""
    def of(rs: JSON | None) -> list[JSON]:
        return [{"type": c["type"], "status": c.get("status", ""), "lastUpdateTime": c.get("lastTransitionTime"),
                 "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason", ""),
                 "message": c.get("message", "")}
                for c in ((rs or {}).get("status") or {}).get("conditions") or [] if c.get("type") == REPLICA_FAILURE]
    found = of(new_rs)
    return found or [c for rs in all_rses for c in of(rs)]


def stuck_requeue(d: JSON, status: JSON, now: datetime) -> float | None:
    """Seconds until the progress deadline would pass, when a rollout is waiting for progress."""
    current = get_condition(d.get("status"), PROGRESSING)
    if not has_progress_deadline(d) or current is None or not current.get("lastUpdateTime"):
        return None
    if complete(d, status) or current.get("reason") == TIMED_OUT:
        return None
    after = (parse_rfc3339(current["lastUpdateTime"]).timestamp() + int(d["spec"]["progressDeadlineSeconds"])
             - now.timestamp())
    return max(after, 0.0) + 0.1
