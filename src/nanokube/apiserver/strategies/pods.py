"""Pods: status starts Pending with a QoS class, and deletion is graceful once a node runs the Pod."""

from __future__ import annotations

from typing import Any

from nanokube.api.quantity import parse_quantity

from .base import JSON, Strategy

_TERMINAL = ("Succeeded", "Failed")


def qos_class(spec: JSON) -> str:
    """Guaranteed, Burstable or BestEffort, computed the way the kubelet's qos package does."""
    containers: list[dict[str, Any]] = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = {k: v for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        for name, value in req.items():
            if parse_quantity(value) != 0:
                requests[name] = requests.get(name, 0) + parse_quantity(value)
        for name, value in lim.items():
            if parse_quantity(value) != 0:
                limits[name] = limits.get(name, 0) + parse_quantity(value)
        if set(lim) != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == requests.get(k, limits.get(k)) for k in ("cpu", "memory")):
        return "Guaranteed"
    return "Burstable"


class PodStrategy(Strategy):
    def prepare_create(self, obj: JSON) -> None:
        super().prepare_create(obj)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    def prepare_update(self, new: JSON, old: JSON) -> None:
        super().prepare_update(new, old)

    def graceful_delete_seconds(self, obj: JSON, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in _TERMINAL:
            return 0  # nothing runs it: it can go now
        if requested is not None:
            return max(requested, 0)
        grace = spec.get("terminationGracePeriodSeconds")
        return 30 if grace is None else int(grace)
