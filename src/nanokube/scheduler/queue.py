"""The scheduling queue: kube's PriorityQueue with its active, backoff and unschedulable sets.

``active`` is a heap, highest priority first, then first come (PrioritySort). A pod that fails comes back
through ``requeue``: into ``unschedulable`` when plugins rejected it, to wait for a cluster change that could
help; into ``backoff`` (1 s doubling to 10 s per attempt) after an error, or when such a change already
happened while it was being scheduled. ``move`` is that change: a node added or updated, an assigned pod added
or deleted, a claim or volume appearing. Only pods rejected by a plugin that cares about the event move (kube's
EventsToRegister), to ``active`` or, if their backoff has not run out, to ``backoff``. ``flush`` runs about once
a second: expired backoffs go active, and pods stuck unschedulable for 5 minutes are retried anyway. When
nothing is active, ``pop`` takes the next pod from ``backoff`` early (kube's SchedulerPopFromBackoffQ).

Pods with ``schedulingGates`` wait in ``gated`` until an update removes the gates.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .podinfo import PodInfo

# Cluster events, and which rejecting plugins they may help (kube's EventsToRegister).
NODE_ADD = "NodeAdd"
NODE_ALLOCATABLE = "NodeUpdate/Allocatable"
NODE_LABELS = "NodeUpdate/Label"
NODE_TAINTS = "NodeUpdate/Taint"
NODE_UNSCHEDULABLE = "NodeUpdate/Unschedulable"
POD_ADD = "AssignedPodAdd"
POD_UPDATE = "AssignedPodUpdate"
POD_DELETE = "AssignedPodDelete"
VOLUME_CHANGE = "VolumeChange"  # a claim, volume or storage class added or updated
NAMESPACE_CHANGE = "NamespaceUpdate"
UNSCHEDULED_POD_DELETE = "UnscheduledPodDelete"

INTERESTS: dict[str, frozenset[str]] = {
    "": frozenset({NODE_ADD, NODE_ALLOCATABLE, NODE_LABELS, NODE_TAINTS, NODE_UNSCHEDULABLE}),
    "NodeName": frozenset({NODE_ADD}),
    "NodeUnschedulable": frozenset({NODE_ADD, NODE_UNSCHEDULABLE, NODE_TAINTS}),
    "TaintToleration": frozenset({NODE_ADD, NODE_TAINTS}),
    "NodeAffinity": frozenset({NODE_ADD, NODE_LABELS}),
    "NodePorts": frozenset({NODE_ADD, POD_DELETE}),
    "NodeResourcesFit": frozenset({NODE_ADD, NODE_ALLOCATABLE, POD_DELETE}),
    "VolumeBinding": frozenset({NODE_ADD, NODE_LABELS, VOLUME_CHANGE}),
    "PodTopologySpread": frozenset({NODE_ADD, NODE_LABELS, NODE_TAINTS, POD_ADD, POD_UPDATE, POD_DELETE}),
    "InterPodAffinity": frozenset({NODE_ADD, NODE_LABELS, POD_ADD, POD_UPDATE, POD_DELETE, NAMESPACE_CHANGE}),
}
Hint = Callable[[PodInfo, str, object], bool]  # (pod, event, object) -> could this help?


@dataclass(eq=False)
class QueuedPod:
    info: PodInfo
    seq: int
    attempts: int = 0
    added_at: float = 0.0  # last time it entered the queue (backoff counts from here)
    first_attempt: float | None = None
    rejected_by: set[str] = field(default_factory=set)
    deleted: bool = False
    error: bool = False  # last failure was an error: no early pop from backoff

    @property
    def uid(self) -> str:
        return self.info.uid


def gated(info: PodInfo) -> bool:
    return bool(info.spec.get("schedulingGates"))


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 300.0, pop_from_backoff: bool = True,
                 hints: dict[str, Hint] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.pop_from_backoff = pop_from_backoff
        self.hints = hints or {}
        self.clock = clock
        self._seq = itertools.count()
        self._active: list[tuple[float, int, str]] = []  # (-priority, seq, uid)
        self._backoff: list[tuple[float, int, str]] = []  # (expiry, seq, uid)
        self._error_backoff: list[tuple[float, int, str]] = []  # pods that failed with an error
        self.where: dict[str, str] = {}  # uid -> active | backoff | unschedulable | gated | flight
        self.pods: dict[str, QueuedPod] = {}
        self._unschedulable: dict[str, QueuedPod] = {}
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def has_unschedulable(self) -> bool:
        return bool(self._unschedulable)

    def count(self, where: str) -> int:
        """How many pods are in one set (active, backoff, unschedulable, gated, flight); O(pods)."""
        return sum(1 for w in self.where.values() if w == where)

    # -- entering and leaving ------------------------------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A new unscheduled pod, or a new version of one already known."""
        if info.uid in self.pods:
            self.update(info)
            return
        qp = QueuedPod(info, next(self._seq), added_at=self.clock())
        self.pods[info.uid] = qp
        self._place(qp, "gated" if gated(info) else "active")

    def update(self, info: PodInfo) -> None:
        qp = self.pods.get(info.uid)
        if qp is None:
            self.add(info)
            return
        old, qp.info = qp.info, info
        where = self.where[qp.uid]
        if where == "gated" and not gated(info):
            self._place(qp, "active")
        elif where == "unschedulable" and _spec_changed(old, info):
            self._place(qp, "backoff" if self._backing_off(qp) else "active")

    def delete(self, uid: str) -> None:
        qp = self.pods.pop(uid, None)
        if qp is None:
            return
        qp.deleted = True
        self.where.pop(uid, None)  # heap entries for it are skipped when popped
        self._unschedulable.pop(uid, None)

    def _place(self, qp: QueuedPod, where: str) -> None:
        self.where[qp.uid] = where
        if where == "unschedulable":
            self._unschedulable[qp.uid] = qp
        else:
            self._unschedulable.pop(qp.uid, None)
        if where == "active":
            qp.seq = next(self._seq)
            heapq.heappush(self._active, (-qp.info.priority, qp.seq, qp.uid))
            self._wake.set()
        elif where == "backoff":
            qp.seq = next(self._seq)
            heap = self._error_backoff if qp.error else self._backoff
            heapq.heappush(heap, (self._backoff_expiry(qp), qp.seq, qp.uid))
            if self.pop_from_backoff and not qp.error:
                self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    # -- popping --------------------------------------------------------------------------------------------

    async def pop(self) -> QueuedPod | None:
        """The next pod to schedule (None once closed). It stays "in flight" until requeued or done."""
        while not self._closed:
            qp = self._pop_heap(self._active, "active")
            if qp is None and self.pop_from_backoff:
                qp = self._pop_heap(self._backoff, "backoff")
            if qp is not None:
                self.scheduling_cycle += 1
                qp.attempts += 1
                if qp.first_attempt is None:
                    qp.first_attempt = self.clock()
                self.where[qp.uid] = "flight"
                return qp
            self._wake.clear()
            await self._wake.wait()
        return None

    def _pop_heap(self, heap: list[tuple[float, int, str]], where: str) -> QueuedPod | None:
        while heap:
            _, seq, uid = heapq.heappop(heap)
            qp = self.pods.get(uid)
            if qp is not None and self.where.get(uid) == where and qp.seq == seq:
                return qp
        return None

    def done(self, uid: str) -> None:
        """The pod was scheduled (or is gone): forget it."""
        self.pods.pop(uid, None)
        self.where.pop(uid, None)
        self._unschedulable.pop(uid, None)

    def requeue(self, qp: QueuedPod, cycle: int, rejected_by: set[str], *, error: bool = False) -> None:
        """kube's AddUnschedulableIfNotPresent for a pod that failed the cycle ``cycle``."""
        if qp.deleted or self.pods.get(qp.uid) is not qp:
            return
        qp.rejected_by = set(rejected_by)
        qp.added_at = self.clock()
        qp.error = error
        if error or not rejected_by or self.move_request_cycle >= cycle:
            self._place(qp, "backoff")
        else:
            self._place(qp, "unschedulable")

    # -- moving ---------------------------------------------------------------------------------------------

    def move(self, event: str, obj: object = None) -> int:
        """A cluster change: move the unschedulable pods it may help. Returns how many moved."""
        self.move_request_cycle = self.scheduling_cycle
        moved = 0
        for qp in list(self._unschedulable.values()):
            if self._interested(qp, event, obj):
                qp.error = False
                self._place(qp, "backoff" if self._backing_off(qp) else "active")
                moved += 1
        return moved

    def _interested(self, qp: QueuedPod, event: str, obj: object) -> bool:
        plugins = qp.rejected_by or {""}
        for plugin in plugins:
            if event in INTERESTS.get(plugin, INTERESTS[""]):
                hint = self.hints.get(plugin)
                if hint is None or hint(qp.info, event, obj):
                    return True
        return False

    def flush(self) -> None:
        """Expired backoffs go active; pods unschedulable for too long are retried."""
        now = self.clock()
        for heap in (self._backoff, self._error_backoff):
            while heap and heap[0][0] <= now:
                _, seq, uid = heapq.heappop(heap)
                qp = self.pods.get(uid)
                if qp is not None and self.where.get(uid) == "backoff" and qp.seq == seq:
                    self._place(qp, "active")
        for qp in list(self._unschedulable.values()):
            if now - qp.added_at >= self.max_unschedulable:
                self._place(qp, "backoff" if self._backing_off(qp) else "active")

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration > self.max_backoff:
                return self.max_backoff
        return duration

    def _backoff_expiry(self, qp: QueuedPod) -> float:
        return qp.added_at + self.backoff_duration(qp.attempts)

    def _backing_off(self, qp: QueuedPod) -> bool:
        return self._backoff_expiry(qp) > self.clock()


def _spec_changed(old: PodInfo, new: PodInfo) -> bool:
    """kube's isPodUpdated: anything but status, resourceVersion and managed fields changed."""
    return _strip(old.pod) != _strip(new.pod)


def _strip(pod: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    meta = {k: v for k, v in (pod.get("metadata") or {}).items()
            if k not in ("resourceVersion", "generation", "managedFields")}
    return meta, pod.get("spec")
