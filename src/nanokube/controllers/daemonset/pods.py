"""Daemon pods: how one is built for a node, which pods a node should lose or gain, and the two memories the
controller keeps between syncs (expectations of its own writes, back-off for pods that keep failing).

``node_plan`` is kube's ``podsShouldBeOnNode`` without side effects: a node that should run the DaemonSet and has
no pod gets one; failed and succeeded pods are deleted (failed ones no faster than the back-off allows, since a
kubelet rejecting the pod would otherwise make the two fight in a hot loop); extra pods beyond one (or beyond one
old plus one new while surging) are pruned, the oldest kept; a node that should no longer run it loses them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON

from ..replicaset import is_pod_available, is_pod_ready
from .history import GENERATION_LABEL, HASH_LABEL
from .placement import add_daemon_tolerations, pin_to_node
from .update import updated_pods_on_node

EXPECTATIONS_TTL = 300.0


def owner_reference(ds: JSON) -> JSON:
    meta = ds["metadata"]
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def new_pod(ds: JSON, node_name: str, hash_: str, generation: int | None) -> JSON:
    """The pod the DaemonSet runs on ``node_name``: its template with the default daemon tolerations, the
    revision labels, and a required node affinity that lets the scheduler bind it to that node only."""
    template = deep_copy(((ds.get("spec") or {}).get("template")) or {})
    tmeta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    add_daemon_tolerations(spec)
    spec["affinity"] = pin_to_node(spec.get("affinity"), node_name)
    labels = dict(tmeta.get("labels") or {})
    if generation is not None:
        labels[GENERATION_LABEL] = str(generation)
    if hash_:
        labels[HASH_LABEL] = hash_
    meta: JSON = {"generateName": f"{ds['metadata']['name']}-", "labels": labels,
                  "ownerReferences": [owner_reference(ds)]}
    for name in ("annotations", "finalizers"):
        if tmeta.get(name):
            meta[name] = tmeta[name]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def age_order(pod: JSON) -> tuple[bool, str, str]:
    """Sort key of ``podByCreationTimestampAndPhase``: bound pods first, then oldest, then by name."""
    meta = pod["metadata"]
    return not (pod.get("spec") or {}).get("nodeName"), meta.get("creationTimestamp", ""), meta.get("name", "")


@dataclass
class NodePlan:
    create: bool = False
    delete: list[JSON] = field(default_factory=list)
    failed: list[JSON] = field(default_factory=list)  # failed pods being deleted now (an event each)
    succeeded: list[JSON] = field(default_factory=list)
    retry_after: float | None = None  # a failed pod held back by the back-off


def node_plan(should_run: bool, should_continue: bool, pods: list[JSON] | None, surge: bool, hash_: str,
              generation: int | None, min_ready: int, now: datetime,
              backoff_allows: Callable[[], float | None]) -> NodePlan:
    """What to do on one node. ``backoff_allows`` returns None when a failed pod may be deleted now (and
    counts the deletion), else the seconds to wait."""
    plan = NodePlan()
    if should_run and pods is None:
        plan.create = True
        return plan
    if not should_continue:
        plan.delete = [p for p in pods or [] if not p["metadata"].get("deletionTimestamp")]
        return plan
    running: list[JSON] = []
    for pod in pods or []:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            wait = backoff_allows()
            if wait is not None:
                plan.retry_after = wait if plan.retry_after is None else min(wait, plan.retry_after)
                continue
            plan.failed.append(pod)
        elif phase == "Succeeded":
            plan.succeeded.append(pod)
        else:
            running.append(pod)
    plan.delete = plan.failed + plan.succeeded
    running.sort(key=age_order)
    if not surge or len(running) <= 1:
        if not surge:
            plan.delete += running[1:]
        elif not running and should_run:
            plan.create = True  # surging keeps at least one live pod per node
        return plan
    plan.delete += _surge_excess(running, hash_, generation, min_ready, now)
    return plan


def _surge_excess(running: list[JSON], hash_: str, generation: int | None, min_ready: int,
                  now: datetime) -> list[JSON]:
    """While surging a node keeps its oldest new pod and its oldest old pod; the old one goes once it is not
    ready, or once the new one is available."""
    excess: list[JSON] = []
    new = old = None
    for pod in running:
        is_new = updated_pods_on_node([pod], hash_, generation)[0] is not None
        if is_new and new is None:
            new = pod
        elif not is_new and old is None:
            old = pod
        else:
            excess.append(pod)
    if new is not None and old is not None and (not is_pod_ready(old) or is_pod_available(new, min_ready, now)):
        excess.append(old)
    return excess


class Expectations:
    """``ControllerExpectations``: pod creations (counted) and deletions (by pod key) a DaemonSet has sent and
    waits to see in the informer before acting on it again; forgotten after five minutes."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._items: dict[Hashable, tuple[int, set[str], float]] = {}

    def expect(self, key: Hashable, creations: int, deletions: Iterable[str]) -> None:
        self._items[key] = (creations, set(deletions), time.monotonic())

    def satisfied(self, key: Hashable) -> bool:
        item = self._items.get(key)
        if item is None or (item[0] <= 0 and not item[1]):
            return True
        return time.monotonic() - item[2] > self.ttl

    def creation_observed(self, key: Hashable, count: int = 1) -> None:
        item = self._items.get(key)
        if item is not None:
            self._items[key] = (item[0] - count, item[1], item[2])

    def deletion_observed(self, key: Hashable, pod_key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item[1].discard(pod_key)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)


class Backoff:
    """``flowcontrol.Backoff``: per key, a delay that starts at ``initial`` and doubles up to ``cap`` each time
    it is used within twice the cap of the last use."""

    def __init__(self, initial: float = 1.0, cap: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial, self.cap, self.clock = initial, cap, clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last use)
        self._last_gc = clock()

    def wait_left(self, key: str) -> float | None:
        """Seconds until ``key`` may be used again, or None when it may be used now."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        left = entry[1] + entry[0] - self.clock()
        return left if left > 0 else None

    def use(self, key: str) -> None:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.cap:
            self._entries[key] = (self.initial, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.cap), now)

    def gc(self) -> None:
        now = self.clock()
        if now - self._last_gc < 60:
            return
        self._last_gc = now
        self._entries = {k: v for k, v in self._entries.items() if now - v[1] <= 2 * self.cap}
