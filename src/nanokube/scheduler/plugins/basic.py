"""Small filters: NodeName, NodeUnschedulable and NodePorts, with kube's reasons and codes."""

from __future__ import annotations

import numpy as np

from ..framework import SKIP, CycleState, FilterResult, Mask, PreFilterResult, Status
from ..podinfo import PodInfo
from ..resources import ports_conflict
from ..snapshot import Snapshot
from .taints import tolerates

NODE_NAME_REASON = "node(s) didn't match the requested node name"
UNSCHEDULABLE_REASON = "node(s) were unschedulable"
PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeName:
    name = "NodeName"

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        wanted = pod.spec.get("nodeName")
        if not wanted:
            return None
        passed = snap.rows_named([wanted])
        return FilterResult.reject(passed, NODE_NAME_REASON, unresolvable=True)


class NodeUnschedulable:
    """Cordoned nodes (``spec.unschedulable``) take only pods tolerating the unschedulable taint."""

    name = "NodeUnschedulable"

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        table = snap.table
        cordoned = table.unschedulable[: table.size]
        if not cordoned.any():
            return None
        if any(tolerates(t, UNSCHEDULABLE_TAINT) for t in pod.spec.get("tolerations") or []):
            return None
        return FilterResult.reject(~cordoned, UNSCHEDULABLE_REASON, unresolvable=True)


class NodePorts:
    name = "NodePorts"

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        return None, (SKIP if not pod.ports else Status())

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        passed = np.ones(snap.table.size, np.bool_)
        for info in snap.nodes():
            if info.ports and ports_conflict(pod.ports, info.ports):
                passed[info.row] = False
        if passed.all():
            return None
        return FilterResult.reject(passed, PORTS_REASON, unresolvable=False)
