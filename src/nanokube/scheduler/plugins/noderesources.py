"""NodeResourcesFit (filter + LeastAllocated/MostAllocated score) and NodeResourcesBalancedAllocation.

The fit check is one array expression over every node: ``request > allocatable - requested`` for the pod count
and each resource the pod asks for, giving kube's reasons ("Too many pods", "Insufficient cpu", ...). A node whose
allocatable is smaller than the request is UnschedulableAndUnresolvable (preemption cannot help), as in kube.
Pods nominated to a node by preemption, with at least this pod's priority, count there as if running.

Scores follow kube's integer formulas on the scored rows: LeastAllocated ``(cap - req) * 100 / cap``, MostAllocated
``req * 100 / cap`` (cpu and memory, weighted, requests counted with the 100m/200Mi non-zero defaults), and
BalancedAllocation ``(1 - |cpu fraction - memory fraction| / 2) * 100`` on actual requests, skipped for pods that
request neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..framework import SKIP, CycleState, FilterResult, Mask, PreFilterResult, Rows, Scores, Status
from ..podinfo import PodInfo
from ..snapshot import Snapshot
from ..table import CPU, MEMORY, PODS, NodeTable

LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"


def _reason(name: str) -> str:
    return "Too many pods" if name == "pods" else f"Insufficient {name}"


def fit_vector(pod: PodInfo, table: NodeTable) -> tuple[Any, np.ndarray, list[str]]:
    """(row index, request values, resource names) of what the pod needs, pods count first; cached per layout."""
    cached = pod.fit_cache
    if cached is not None and cached[0] == table.layout_epoch and cached[1] is table.resources:
        return cached[2], cached[3], cached[4]
    names = ["pods"] + [n for n, v in pod.requests.items() if v > 0]
    for name in names:
        table.resource_row(name)
    rows = [table.resources[n] for n in names]
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    rows = [rows[i] for i in order]
    names = [names[i] for i in order]
    values = np.array([1 if n == "pods" else pod.requests[n] for n in names], np.int64)
    index: Any = slice(rows[0], rows[-1] + 1) if rows == list(range(rows[0], rows[-1] + 1)) else np.array(rows)
    pod.fit_cache = (table.layout_epoch, table.resources, index, values, names)
    return index, values, names


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def __init__(self, strategy: str = LEAST_ALLOCATED, weights: dict[str, int] | None = None) -> None:
        self.strategy = strategy
        self.weights = weights or {"cpu": 1, "memory": 1}
        self._weights = np.array([[self.weights.get("cpu", 0)], [self.weights.get("memory", 0)]], np.int64)

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        fit_vector(pod, snap.table)
        return None, Status()

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        table = snap.table
        n = table.size
        index, values, names = fit_vector(pod, table)
        alloc = table.alloc[index, :n]
        free = alloc - table.used[index, :n]
        short = values[:, None] > free
        if snap.nominated:
            _nominated(pod, snap, index, values, short)
        passed: Mask = np.logical_not(short.any(axis=0))
        reasons = [(_reason(name), short[i]) for i, name in enumerate(names)]
        unresolvable: Mask | bool = False
        if len(names) > 1:
            unresolvable = np.asarray((values[1:, None] > alloc[1:]).any(axis=0))
        return FilterResult(passed, reasons, unresolvable)

    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        """Per resource ``(cap - req) * 100 // cap`` (or ``req * 100 // cap``), 0 past capacity; then the weighted
        mean over the resources the node has at all (kube's resourceAllocationScorer)."""
        table = snap.table
        cap = table.alloc[CPU: MEMORY + 1][:, rows]
        req = table.nonzero[:, rows] + np.array([[pod.nonzero_cpu], [pod.nonzero_mem]], np.int64)
        safe = np.maximum(cap, 1)
        if self.strategy == MOST_ALLOCATED:
            per_resource = np.minimum(req, cap) * 100 // safe
        else:
            per_resource = np.maximum(cap - req, 0) * 100 // safe
        weights = self._weights * (cap > 0)
        total = (per_resource * weights).sum(axis=0)
        return total // np.maximum(weights.sum(axis=0), 1)


def _nominated(pod: PodInfo, snap: Snapshot, index: Any, values: np.ndarray, short: np.ndarray) -> None:
    """Count pods nominated to a node (priority >= this pod's, not itself) as running there."""
    table = snap.table
    for node, pods in snap.nominated.items():
        row = table.rows.get(node)
        if row is None:
            continue
        extra = [p for p in pods.values() if p.uid != pod.uid and p.priority >= pod.priority]
        if not extra:
            continue
        used = table.used[:, row].copy()
        for other in extra:
            used[PODS] += 1
            for name, amount in other.requests.items():
                r = table.resources.get(name)
                if r is not None:
                    used[r] += amount
        free = table.alloc[index, row] - used[index]
        short[:, row] |= values > free


class BalancedAllocation:
    name = "NodeResourcesBalancedAllocation"

    def pre_score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Status:
        return SKIP if pod.best_effort_for_scoring else Status()

    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        table = snap.table
        cap = table.alloc[CPU: MEMORY + 1][:, rows]
        req = table.used[CPU: MEMORY + 1][:, rows] + np.array(
            [[pod.requests.get("cpu", 0)], [pod.requests.get("memory", 0)]], np.int64)
        fraction = np.minimum(req / np.maximum(cap, 1), 1.0)
        std = np.abs(fraction[0] - fraction[1]) / 2
        if not cap.all():  # a resource the node lacks leaves one fraction: no deviation
            std[~cap.all(axis=0)] = 0.0
        return ((1 - std) * 100).astype(np.int64)
