"""Job conditions and status fields, with kube's types, reasons and messages.

A Job ends in two steps, as on Kubernetes 1.31+ (``JobManagedBy``/``JobPodReplacementPolicy``): first an
interim ``SuccessCriteriaMet`` or ``FailureTarget`` condition, written while Pods are still being cleaned
up, then ``Complete`` or ``Failed`` with the same reason and message once no Pod is left terminating or
uncounted. ``kubectl wait --for=condition=complete`` and ``kubectl get jobs`` read the final ones.

``wire_status`` shapes a status dict the way the Go structs serialise: ``active``/``succeeded``/``failed``
omitted when zero, ``ready``/``terminating`` always present, ``uncountedTerminatedPods`` an object whose
empty lists are omitted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nanokube.client.interface import JSON
from nanokube.util.timeutil import rfc3339

COMPLETE = "Complete"
FAILED = "Failed"
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
SUSPENDED = "Suspended"

# (reason, message) pairs, as pkg/controller/job words them.
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
MAX_FAILED_INDEXES_EXCEEDED = ("MaxFailedIndexesExceeded",
                               "Job has exceeded the specified maximal number of failed indexes")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
POD_FAILURE_POLICY = "PodFailurePolicy"
SUCCESS_POLICY = "SuccessPolicy"


def new_condition(kind: str, reason: str, message: str, now: datetime, status: str = "True") -> dict[str, Any]:
    stamp = rfc3339(now)
    return {"type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def conditions(job: JSON) -> list[dict[str, Any]]:
    return list((job.get("status") or {}).get("conditions") or [])


def find(job: JSON, kind: str) -> dict[str, Any] | None:
    for cond in conditions(job):
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_true(job: JSON, kind: str) -> bool:
    cond = find(job, kind)
    return cond is not None and cond.get("status") == "True"


def finished_type(job: JSON) -> str | None:
    """``Complete`` or ``Failed`` when the Job has finished, else None (``IsJobFinished``)."""
    for cond in conditions(job):
        if cond.get("type") in (COMPLETE, FAILED) and cond.get("status") == "True":
            return str(cond["type"])
    return None


def is_finished(job: JSON) -> bool:
    return finished_type(job) is not None


def ensure_condition(job: JSON, kind: str, status: str, reason: str, message: str, now: datetime) -> bool:
    """Add or change the condition of ``kind``; never adds one that is False. True when something changed."""
    conds = job.setdefault("status", {}).setdefault("conditions", [])
    for i, cond in enumerate(conds):
        if cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (status, reason, message):
                return False
            conds[i] = new_condition(kind, reason, message, now, status)
            return True
    if status == "False":
        return False
    conds.append(new_condition(kind, reason, message, now, status))
    return True


def counter(job: JSON, name: str) -> int:
    return int((job.get("status") or {}).get(name) or 0)


def wire_status(status: dict[str, Any]) -> dict[str, Any]:
    out = dict(status)
    for name in ("active", "succeeded", "failed"):
        if not out.get(name):
            out.pop(name, None)
    for name in ("completedIndexes", "completionTime", "startTime"):
        if not out.get(name):
            out.pop(name, None)
    if not out.get("conditions"):
        out.pop("conditions", None)
    uncounted = dict(out.get("uncountedTerminatedPods") or {})
    out["uncountedTerminatedPods"] = {k: list(v) for k, v in uncounted.items() if v}
    return out
