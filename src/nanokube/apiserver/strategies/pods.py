"""Pods: deletion is graceful once a node runs the Pod (status starts Pending, set by the defaults)."""

from __future__ import annotations

from .base import JSON, Strategy

_TERMINAL = ("Succeeded", "Failed")


_NODE_PROBLEM_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


class PodStrategy(Strategy):
    def default(self, obj: JSON) -> None:
        seconds = self.options.pod_toleration_seconds
        spec = obj.get("spec")
        if seconds != 300 and isinstance(spec, dict) and isinstance(spec.get("tolerations", []), list):
            # Add the node-problem tolerations with this cluster's seconds before the generic 300 s ones.
            tolerations = list(spec.get("tolerations") or [])
            for key in _NODE_PROBLEM_TAINTS:
                if not any(isinstance(t, dict) and t.get("key") in (key, "", None)
                           and t.get("effect") in ("NoExecute", "", None) for t in tolerations):
                    tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                        "tolerationSeconds": seconds})
            spec["tolerations"] = tolerations
        super().default(obj)

    def graceful_delete_seconds(self, obj: JSON, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in _TERMINAL:
            return 0  # nothing runs it: it can go now
        if requested is not None:
            return max(requested, 0)
        grace = spec.get("terminationGracePeriodSeconds")
        return 30 if grace is None else int(grace)
