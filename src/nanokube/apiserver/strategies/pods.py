"""Pods: deletion is graceful once a node runs the Pod (status starts Pending, set by the defaults)."""

from __future__ import annotations

from .base import JSON, Strategy

_TERMINAL = ("Succeeded", "Failed")


class PodStrategy(Strategy):
    def graceful_delete_seconds(self, obj: JSON, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in _TERMINAL:
            return 0  # nothing runs it: it can go now
        if requested is not None:
            return max(requested, 0)
        grace = spec.get("terminationGracePeriodSeconds")
        return 30 if grace is None else int(grace)
