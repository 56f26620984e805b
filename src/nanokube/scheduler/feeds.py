"""Informers that keep the scheduler's snapshot and queue current, and pod priority resolution.

Nodes go into the snapshot (a change that could help waiting pods moves them). Pods split three ways, as in
kube's event handlers: an assigned pod is charged to its node (the informer's copy replaces an assumed one); an
unassigned pod of this scheduler enters the queue; a pod that ends (deleted, Succeeded, Failed) frees its node
and leaves the queue. Claims, volumes, storage classes and namespaces only move waiting pods; Services,
ReplicaSets, StatefulSets, ReplicationControllers, PodDisruptionBudgets and PriorityClasses are read from their
caches by plugins.

Priority: ``spec.priority`` when the API server set it, else the named PriorityClass's value (the two built-in
system classes included), else the global-default class's, else 0. Admission should do this at pod creation;
until it does, the scheduler does it here.
"""

from __future__ import annotations

import logging
from typing import Any

from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from . import queue as q
from .podinfo import PodInfo
from .queue import SchedulingQueue
from .snapshot import Snapshot

log = logging.getLogger(__name__)
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
RESOURCES = {
    "nodes": ("", "v1"), "pods": ("", "v1"), "persistentvolumeclaims": ("", "v1"),
    "persistentvolumes": ("", "v1"), "storageclasses": ("storage.k8s.io", "v1"), "namespaces": ("", "v1"),
    "priorityclasses": ("scheduling.k8s.io", "v1"), "services": ("", "v1"), "replicasets": ("apps", "v1"),
    "statefulsets": ("apps", "v1"), "replicationcontrollers": ("", "v1"),
    "poddisruptionbudgets": ("policy", "v1"),
}
_NODE_EVENTS = {"allocatable": q.NODE_ALLOCATABLE, "labels": q.NODE_LABELS, "taints": q.NODE_TAINTS,
                "unschedulable": q.NODE_UNSCHEDULABLE}


def terminal(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class Feeds:
    def __init__(self, client: Client, snapshot: Snapshot, queue: SchedulingQueue, scheduler_name: str) -> None:
        self.snapshot = snapshot
        self.queue = queue
        self.scheduler_name = scheduler_name
        self.informers: dict[str, Informer] = {}
        for plural, (group, version) in RESOURCES.items():
            resource = client.registry.get(group, version, plural)
            if resource is not None:
                self.informers[plural] = Informer(client, resource)
        self.informers["nodes"].add_handler(self._on_node)
        self.informers["pods"].add_handler(self._on_pod)
        for plural in ("persistentvolumeclaims", "persistentvolumes", "storageclasses"):
            if plural in self.informers:
                self.informers[plural].add_handler(self._on_volume)
        if "namespaces" in self.informers:
            self.informers["namespaces"].add_handler(self._on_namespace)

    def caches(self) -> dict[str, dict[str, JSON]]:
        return {plural: informer.cache for plural, informer in self.informers.items()}

    # -- nodes ----------------------------------------------------------------------------------------------

    def _on_node(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind == "DELETED":
            self.snapshot.remove_node(obj["metadata"]["name"])
            return
        changes = self.snapshot.set_node(obj)
        if "add" in changes:
            self.queue.move(q.NODE_ADD, obj)
            return
        for change in changes:
            event = _NODE_EVENTS.get(change)
            if event is not None:
                self.queue.move(event, obj)

    # -- pods -----------------------------------------------------------------------------------------------

    def _on_pod(self, kind: str, obj: JSON, old: JSON | None) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid") or ""
        node = (obj.get("spec") or {}).get("nodeName") or ""
        if kind == "DELETED" or (node and terminal(obj)):
            self._pod_gone(uid, bool(node))
            return
        if node:
            self._assigned(uid, obj, node)
            return
        if terminal(obj) or meta.get("deletionTimestamp") or \
                (obj.get("spec") or {}).get("schedulerName", "default-scheduler") != self.scheduler_name:
            self.queue.delete(uid)  # ended, going away, or another scheduler's: not ours to place
            return
        if self.snapshot.is_assumed(uid):
            return  # our binding is on its way; this is an older version of the pod
        self.queue.add(self._resolved(obj))

    def _pod_gone(self, uid: str, assigned: bool) -> None:
        removed = self.snapshot.remove_pod(uid)
        self.snapshot.clear_nomination(uid)
        self.queue.delete(uid)
        if removed is not None or assigned:
            self.queue.move(q.POD_DELETE)
        else:
            self.queue.move(q.UNSCHEDULED_POD_DELETE)

    def _assigned(self, uid: str, obj: JSON, node: str) -> None:
        known = self.snapshot.pods.get(uid)
        confirmed = self.snapshot.is_assumed(uid)  # our own binding coming back: a new pod for everyone else
        self.queue.delete(uid)
        self.snapshot.clear_nomination(uid)
        if known is not None and known[1] == node and _same_shape(known[0].pod, obj):
            info = known[0]
            info.pod = obj  # the bound copy of the pod we assumed: nothing the snapshot counts changed
            info.terminating = bool(obj["metadata"].get("deletionTimestamp"))
        else:
            info = self._resolved(obj)
        self.snapshot.add_pod(info, node)
        if not self.queue.has_unschedulable:
            return
        if known is None or known[1] != node or confirmed:
            self.queue.move(q.POD_ADD, obj)
        elif known[0].labels != info.labels:
            self.queue.move(q.POD_UPDATE, obj)  # status-only updates (kubelets) help nobody: no event

    def _resolved(self, obj: JSON) -> PodInfo:
        info = PodInfo.of(obj, self.priority_of(obj))
        info.policy = self.policy_of(obj)
        return info

    # -- others ---------------------------------------------------------------------------------------------

    def _on_volume(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind != "DELETED":
            self.queue.move(q.VOLUME_CHANGE, obj)

    def _on_namespace(self, kind: str, obj: JSON, old: JSON | None) -> None:
        labels = (obj.get("metadata") or {}).get("labels")
        if old is None or labels != (old.get("metadata") or {}).get("labels"):
            self.snapshot.namespace_labels_changed()
            self.queue.move(q.NAMESPACE_CHANGE, obj)

    # -- priority -------------------------------------------------------------------------------------------

    def _class(self, name: str) -> JSON | None:
        informer = self.informers.get("priorityclasses")
        return None if informer is None else informer.cache.get(name)

    def _default_class(self) -> JSON | None:
        informer = self.informers.get("priorityclasses")
        if informer is None:
            return None
        return next((pc for pc in informer.cache.values() if pc.get("globalDefault")), None)

    def priority_of(self, pod: JSON) -> int:
        spec: dict[str, Any] = pod.get("spec") or {}
        if isinstance(spec.get("priority"), int):
            return int(spec["priority"])
        name = spec.get("priorityClassName")
        if name:
            pc = self._class(name)
            if pc is not None:
                return int(pc.get("value") or 0)
            if name in SYSTEM_PRIORITIES:
                return SYSTEM_PRIORITIES[name]
            log.warning("pod %s/%s names PriorityClass %s, which does not exist; using priority 0",
                        pod["metadata"].get("namespace"), pod["metadata"].get("name"), name)
            return 0
        default = self._default_class()
        return int(default.get("value") or 0) if default is not None else 0

    def policy_of(self, pod: JSON) -> str:
        spec: dict[str, Any] = pod.get("spec") or {}
        name = spec.get("priorityClassName")
        pc = self._class(name) if name else self._default_class()
        return str((pc or {}).get("preemptionPolicy") or "")


def _same_shape(a: JSON, b: JSON) -> bool:
    """Two versions of a pod that count the same on a node (the bind only set nodeName and a condition)."""
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    if ma.get("labels") != mb.get("labels") or ma.get("deletionTimestamp") != mb.get("deletionTimestamp"):
        return False
    sa, sb = a.get("spec") or {}, b.get("spec") or {}
    return sa.get("containers") == sb.get("containers") and sa.get("initContainers") == sb.get("initContainers") \
        and sa.get("overhead") == sb.get("overhead") and sa.get("affinity") == sb.get("affinity")
