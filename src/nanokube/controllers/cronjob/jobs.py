"""The Jobs a CronJob makes and keeps track of (``pkg/controller/cronjob/utils.go``).

A Job for the activation at time T is named ``<cronjob>-<T in minutes since the epoch>``, so the same
activation can never make two Jobs; it copies the job template's labels, annotations and spec, adds the
annotation ``batch.kubernetes.io/cronjob-scheduled-timestamp`` (T in RFC 3339, in the CronJob's
``timeZone``, UTC without one) and a controller reference to the CronJob. ``status.active`` holds
ObjectReferences to the Jobs still running.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def meta(obj: JSON) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def go_rfc3339(when: datetime) -> str:
    """Go's ``time.RFC3339`` layout: ``Z`` for a zero offset, the numeric offset otherwise."""
    text = when.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if when.utcoffset() == timedelta(0) else text


def rfc1123z(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def job_from_template(cronjob: JSON, scheduled: datetime, zone: tzinfo | None) -> JSON:
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    cmeta = meta(cronjob)
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = go_rfc3339(scheduled.astimezone(zone or UTC))
    metadata: dict[str, Any] = {
        "name": job_name(cmeta["name"], scheduled),
        "namespace": cmeta.get("namespace", ""),
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cmeta["name"],
                             "uid": cmeta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}],
    }
    if tmeta.get("labels"):
        metadata["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
            "spec": deep_copy(template.get("spec") or {})}


def reference(job: JSON) -> dict[str, Any]:
    m = meta(job)
    return {"kind": "Job", "namespace": m.get("namespace", ""), "name": m.get("name", ""), "uid": m.get("uid", ""),
            "apiVersion": "batch/v1", "resourceVersion": m.get("resourceVersion", "")}


def finished_type(job: JSON) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def start_order(job: JSON) -> tuple[int, float, str]:
    """Oldest first by ``status.startTime`` (Jobs never started last), name breaking ties."""
    started = (job.get("status") or {}).get("startTime")
    if not started:
        return (1, 0.0, meta(job).get("name", ""))
    return (0, parse_rfc3339(started).timestamp(), meta(job).get("name", ""))


def in_active(cronjob: JSON, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in active_refs(cronjob))


def active_refs(cronjob: JSON) -> list[dict[str, Any]]:
    return list((cronjob.get("status") or {}).get("active") or [])


def drop_active(cronjob: JSON, uid: str) -> None:
    st = cronjob.setdefault("status", {})
    kept = [ref for ref in active_refs(cronjob) if ref.get("uid") != uid]
    if kept:
        st["active"] = kept
    else:
        st.pop("active", None)
