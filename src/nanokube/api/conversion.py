"""Conversions between two API shapes of one stored resource.

Kubernetes stores one Event resource and serves it as core/v1 ``Event`` and as events.k8s.io/v1 ``Event``
(renamed fields: ``involvedObject``/``regarding``, ``message``/``note``, ``source``/``deprecatedSource``...).
nanokube stores the core shape; the API server converts the events.k8s.io view on the way in and out.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

# events.k8s.io/v1 field -> core/v1 field
_EVENTS_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_CORE_TO_EVENTS = {v: k for k, v in _EVENTS_TO_CORE.items()}


def _micro(timestamp: str) -> str:
    """``2026-11-27T18:00:26Z`` as a MicroTime (``2026-11-27T18:00:26.000000Z``)."""
    if "." in timestamp or not timestamp.endswith("Z"):
        return timestamp
    return timestamp[:-1] + ".000000Z"


def event_to_events_v1(core: JSON) -> JSON:
    out: JSON = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key, value in core.items():
        if key in ("apiVersion", "kind"):
            continue
        out[_CORE_TO_EVENTS.get(key, key)] = value
    if not out.get("eventTime"):
        # events.k8s.io requires eventTime; events recorded the core way carry only first/last timestamps.
        seen = core.get("firstTimestamp") or core.get("lastTimestamp") or core["metadata"].get("creationTimestamp")
        if seen:
            out["eventTime"] = _micro(seen)
    return out


def event_to_core(events_v1: JSON) -> JSON:
    out: JSON = {"apiVersion": "v1", "kind": "Event"}
    for key, value in events_v1.items():
        if key in ("apiVersion", "kind"):
            continue
        out[_EVENTS_TO_CORE.get(key, key)] = value
    out.setdefault("involvedObject", {})
    return out
