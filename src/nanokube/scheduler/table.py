"""The node table: one row per node, numpy columns for what every pod's cycle reads over all nodes.

``alloc[r, row]`` and ``used[r, row]`` hold allocatable and requested amounts of resource ``r`` (row 0 is the pod
count, then cpu in millicores, memory, ephemeral-storage, then extended resources as they appear); ``nonzero``
holds the cpu/memory requests scoring counts (unset requests as 100m/200Mi). A fit check or a score over 5,000
nodes is then a handful of array operations instead of a Python loop. Per-node Python details (labels, taints,
pods, host ports) live beside the columns in ``NodeInfo``.

Rows of deleted nodes are reused. Arrays grow by doubling; callers slice ``[:size]``. ``labels_epoch`` and
``taints_epoch`` change whenever any node's labels or taints do, so caches keyed on them stay right.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .podinfo import PodInfo
from .resources import amount, resource_list

JSON = dict[str, Any]
PODS, CPU, MEMORY, EPHEMERAL = 0, 1, 2, 3
_HARD_EFFECTS = ("NoSchedule", "NoExecute")


class NodeInfo:
    __slots__ = ("allocatable", "generation", "labels", "name", "node", "pods", "ports", "row", "taints",
                 "unschedulable")

    def __init__(self, name: str, row: int) -> None:
        self.name = name
        self.row = row
        self.node: JSON = {}
        self.labels: dict[str, str] = {}
        self.taints: list[JSON] = []
        self.unschedulable = False
        self.allocatable: dict[str, int] = {}
        self.pods: dict[str, PodInfo] = {}  # uid -> pod (assumed ones included)
        self.ports: dict[tuple[str, str, int], int] = {}
        self.generation = 0

    def hard_taints(self) -> list[JSON]:
        return [t for t in self.taints if t.get("effect") in _HARD_EFFECTS]


class NodeTable:
    def __init__(self, capacity: int = 64) -> None:
        self.resources: dict[str, int] = {"pods": PODS, "cpu": CPU, "memory": MEMORY, "ephemeral-storage": EPHEMERAL}
        self.alloc = np.zeros((4, capacity), np.int64)
        self.used = np.zeros((4, capacity), np.int64)
        self.nonzero = np.zeros((2, capacity), np.int64)  # cpu, memory as scoring counts them
        self.alive = np.zeros(capacity, np.bool_)
        self.unschedulable = np.zeros(capacity, np.bool_)
        self.infos: list[NodeInfo | None] = []
        self.rows: dict[str, int] = {}
        self._free: list[int] = []
        self.size = 0
        self.count = 0
        self.labels_epoch = 0
        self.taints_epoch = 0
        self.layout_epoch = 0  # bumps when a resource row is added
        self.tainted: set[int] = set()  # rows with NoSchedule/NoExecute taints
        self.soft_tainted: set[int] = set()  # rows with PreferNoSchedule taints

    @property
    def capacity(self) -> int:
        return int(self.alive.shape[0])

    def info(self, name: str) -> NodeInfo | None:
        row = self.rows.get(name)
        return None if row is None else self.infos[row]

    def resource_row(self, name: str) -> int:
        """The row of a resource, added (zeros everywhere) the first time it is seen."""
        row = self.resources.get(name)
        if row is None:
            row = len(self.resources)
            self.resources[name] = row
            zeros = np.zeros((1, self.capacity), np.int64)
            self.alloc = np.vstack([self.alloc, zeros])
            self.used = np.vstack([self.used, zeros])
            self.layout_epoch += 1
            for info in self.infos:
                if info is not None and name in info.allocatable:
                    self.alloc[row, info.row] = info.allocatable[name]
        return row

    def _grow(self) -> None:
        old = self.capacity
        new = old * 2

        def widen(a: Any) -> Any:
            out = np.zeros((*a.shape[:-1], new), a.dtype)
            out[..., :old] = a
            return out

        self.alloc, self.used, self.nonzero = widen(self.alloc), widen(self.used), widen(self.nonzero)
        self.alive, self.unschedulable = widen(self.alive), widen(self.unschedulable)

    def _new_row(self, name: str) -> NodeInfo:
        if self._free:
            row = self._free.pop()
        else:
            if self.size == self.capacity:
                self._grow()
            row = self.size
            self.size += 1
            self.infos.append(None)
        info = NodeInfo(name, row)
        self.infos[row] = info
        self.rows[name] = row
        self.alive[row] = True
        self.count += 1
        return info

    def set_node(self, node: JSON) -> tuple[NodeInfo, set[str]]:
        """Add or refresh a node's row; returns it and what changed ("add", "allocatable", "labels", "taints",
        "unschedulable", "other")."""
        meta = node.get("metadata") or {}
        name = meta.get("name") or ""
        info = self.info(name)
        changes: set[str] = set()
        if info is None:
            info = self._new_row(name)
            changes.add("add")
        status = node.get("status") or {}
        spec = node.get("spec") or {}
        allocatable = resource_list(status.get("allocatable") or status.get("capacity"))
        pods_allowed = _pods(status)
        if allocatable != info.allocatable or pods_allowed != self.alloc[PODS, info.row]:
            changes.add("allocatable")
            self._set_allocatable(info, allocatable, pods_allowed)
        labels = dict(meta.get("labels") or {})
        if labels != info.labels:
            changes.add("labels")
            info.labels = labels
            self.labels_epoch += 1
        taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
        if taints != info.taints:
            changes.add("taints")
            info.taints = taints
            self.taints_epoch += 1
            _mark(self.tainted, info.row, any(t.get("effect") in _HARD_EFFECTS for t in taints))
            _mark(self.soft_tainted, info.row, any(t.get("effect") == "PreferNoSchedule" for t in taints))
        unschedulable = bool(spec.get("unschedulable"))
        if unschedulable != info.unschedulable:
            changes.add("unschedulable")
            info.unschedulable = unschedulable
            self.unschedulable[info.row] = unschedulable
        if not changes:
            changes.add("other")
        info.node = node
        info.generation += 1
        return info, changes

    def _set_allocatable(self, info: NodeInfo, allocatable: dict[str, int], pods_allowed: int) -> None:
        row = info.row
        self.alloc[:, row] = 0
        self.alloc[PODS, row] = pods_allowed
        for name, n in allocatable.items():
            index = self.resource_row(name)  # may widen self.alloc: look it up after
            self.alloc[index, row] = n
        info.allocatable = allocatable

    def remove_node(self, name: str) -> NodeInfo | None:
        row = self.rows.pop(name, None)
        if row is None:
            return None
        info = self.infos[row]
        self.infos[row] = None
        self.alive[row] = False
        self.unschedulable[row] = False
        self.alloc[:, row] = 0
        self.used[:, row] = 0
        self.nonzero[:, row] = 0
        self.tainted.discard(row)
        self.soft_tainted.discard(row)
        self._free.append(row)
        self.count -= 1
        self.labels_epoch += 1
        self.taints_epoch += 1
        return info

    def charge(self, info: NodeInfo, pod: PodInfo, sign: int) -> None:
        """Add (sign 1) or take back (sign -1) a pod's requests and host ports on its node's row."""
        row = info.row
        used = self.used
        used[PODS, row] += sign
        for name, n in pod.requests.items():
            if n:
                index = self.resources.get(name)
                if index is None:
                    index = self.resource_row(name)
                    used = self.used
                used[index, row] += sign * n
        self.nonzero[0, row] += sign * pod.nonzero_cpu
        self.nonzero[1, row] += sign * pod.nonzero_mem
        for port in pod.ports:
            left = info.ports.get(port, 0) + sign
            if left > 0:
                info.ports[port] = left
            else:
                info.ports.pop(port, None)


def _pods(status: JSON) -> int:
    raw = (status.get("allocatable") or status.get("capacity") or {}).get("pods")
    return 0 if raw is None else amount("pods", raw)


def _mark(rows: set[int], row: int, present: bool) -> None:
    if present:
        rows.add(row)
    else:
        rows.discard(row)
