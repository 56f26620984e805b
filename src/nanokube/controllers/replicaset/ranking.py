"""Which pods a shrinking ReplicaSet deletes first: kube's ``ActivePodsWithRanks`` order.

Unscheduled before scheduled, Pending before Unknown before Running, not ready before ready, lower
``controller.kubernetes.io/pod-deletion-cost`` first, pods doubled up on a node with siblings first, then the most
recently ready, the most restarted and the youngest (ages compared on a log2 scale, LogarithmicScaleDown, with
the uid breaking ties).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339

from .pods import is_pod_active, is_pod_ready, pod_ready_condition

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}

def _timestamp(text: str | None) -> float | None:
    return parse_rfc3339(text).timestamp() if text else None


def _log_rank(at: float | None, now: float) -> int:
    age_ns = (now - at) * 1e9 if at is not None else 0
    return int(math.log2(age_ns)) if age_ns > 0 else -1


def _restarts(pod: JSON) -> tuple[int, int]:
    status = pod.get("status") or {}
    regular = max((int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []), default=0)
    sidecars = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []
                if c.get("restartPolicy") == "Always"}
    sidecar = max((int(c.get("restartCount") or 0) for c in status.get("initContainerStatuses") or []
                   if c.get("name") in sidecars), default=0)
    return regular, sidecar


def _deletion_cost(pod: JSON) -> int:
    try:
        return int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def pods_to_delete(pods: list[JSON], related: list[JSON], count: int) -> list[JSON]:
    """The ``count`` pods kube deletes first (``ActivePodsWithRanks`` with LogarithmicScaleDown)."""
    if count >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName", "")
            on_node[node] = on_node.get(node, 0) + 1
    now = time.time()
    facts = {id(p): _facts(p, on_node) for p in pods}

    def compare(a: JSON, b: JSON) -> int:
        return -1 if _less(facts[id(a)], facts[id(b)], now) else (1 if _less(facts[id(b)], facts[id(a)], now) else 0)

    return sorted(pods, key=functools.cmp_to_key(compare))[:count]


def _facts(pod: JSON, on_node: dict[str, int]) -> tuple[Any, ...]:
    node = (pod.get("spec") or {}).get("nodeName", "")
    ready = is_pod_ready(pod)
    ready_at = _timestamp((pod_ready_condition(pod) or {}).get("lastTransitionTime")) if ready else None
    return (node, _PHASE_ORDER.get((pod.get("status") or {}).get("phase", ""), 0), ready, _deletion_cost(pod),
            on_node.get(node, 0), ready_at, _restarts(pod),
            _timestamp(pod["metadata"].get("creationTimestamp")), pod["metadata"].get("uid", ""))


def _newer(t1: float | None, t2: float | None, uid1: str, uid2: str, now: float) -> bool | None:
    """The younger of two times first; equal log2 ages fall back to uid order; None when equal."""
    if t1 == t2:
        return None
    if t1 is None or t2 is None:
        return t1 is None
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    return uid1 < uid2 if diff == 0 else diff < 0


def _less(a: tuple[Any, ...], b: tuple[Any, ...], now: float) -> bool:
    node_a, phase_a, ready_a, cost_a, rank_a, ready_at_a, restarts_a, created_a, uid_a = a
    node_b, phase_b, ready_b, cost_b, rank_b, ready_at_b, restarts_b, created_b, uid_b = b
    if node_a != node_b and (not node_a or not node_b):
        return not node_a  # unscheduled first
    if phase_a != phase_b:
        return bool(phase_a < phase_b)  # Pending < Unknown < Running
    if ready_a != ready_b:
        return not ready_a
    if cost_a != cost_b:
        return bool(cost_a < cost_b)
    if rank_a != rank_b:
        return bool(rank_a > rank_b)  # doubled up on a node first
    if ready_a and ready_b:
        newer = _newer(ready_at_a, ready_at_b, uid_a, uid_b, now)
        if newer is not None:
            return newer
    if restarts_a != restarts_b:
        return bool(restarts_a > restarts_b)
    newer = _newer(created_a, created_b, uid_a, uid_b, now)
    return bool(newer)
