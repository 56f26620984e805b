"""The scheduler's view of the cluster: the node table plus every assigned pod, assumed ones included.

Kept current from informers (``set_node``/``remove_node``, ``add_pod``/``remove_pod``) and by the scheduler itself:
``assume`` charges a pod to its chosen node the moment it is chosen, so the next pod's cycle already sees it,
long before the binding write comes back through the watch; ``forget`` takes it back when binding fails, and
the informer's copy of the bound pod replaces the assumed one. Pods on a node the table does not (yet) know
wait as orphans and are charged when it appears.

Beside the columns it keeps what the plugins would otherwise recompute per pod: the pods that carry pod
(anti-)affinity terms, pods nominated to nodes by preemption, per-selector pod counts (``counters``), node-label
masks and topology-domain ids (cached until a node's labels change).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

import numpy as np

from .counters import Counts, Matcher, PodCounters
from .framework import Mask
from .podinfo import NamespaceLabels, PodInfo
from .table import NodeInfo, NodeTable

DomainIds = np.ndarray


class Snapshot:
    def __init__(self, namespace_labels: NamespaceLabels | None = None) -> None:
        self.table = NodeTable()
        self.pods: dict[str, tuple[PodInfo, str]] = {}  # uid -> (pod, node name)
        self.assumed: set[str] = set()
        self.orphans: dict[str, dict[str, PodInfo]] = {}  # node name -> uid -> pod
        self.affinity_pods: dict[str, tuple[PodInfo, str]] = {}  # assigned pods with pod (anti-)affinity
        self.nominated: dict[str, dict[str, PodInfo]] = {}  # node name -> uid -> pod nominated there
        self._nominated_at: dict[str, str] = {}
        self.counters = PodCounters()
        self.namespace_labels: NamespaceLabels = namespace_labels or (lambda _ns: None)
        self._masks: OrderedDict[Hashable, tuple[int, Mask]] = OrderedDict()
        self._domains: dict[str, tuple[int, DomainIds, list[str]]] = {}

    # -- nodes ----------------------------------------------------------------------------------------------

    @property
    def num_nodes(self) -> int:
        return self.table.count

    def node(self, name: str) -> NodeInfo | None:
        return self.table.info(name)

    def nodes(self) -> Iterator[NodeInfo]:
        return (i for i in self.table.infos if i is not None)

    def set_node(self, node: dict[str, Any]) -> set[str]:
        info, changes = self.table.set_node(node)
        if "add" in changes:
            for pod in self.orphans.pop(info.name, {}).values():
                self._charge(info, pod, 1)
        return changes

    def remove_node(self, name: str) -> NodeInfo | None:
        info = self.table.info(name)
        if info is None:
            return None
        for pod in info.pods.values():
            self.counters.change(pod, info.row, -1)
        if info.pods:
            self.orphans[name] = dict(info.pods)
        info.pods = {}
        return self.table.remove_node(name)

    # -- pods -----------------------------------------------------------------------------------------------

    def add_pod(self, pod: PodInfo, node: str) -> None:
        """Record an assigned pod (replacing an earlier or assumed copy of it)."""
        old = self.pods.get(pod.uid)
        self.assumed.discard(pod.uid)
        if old is not None and old[1] == node and _same_footprint(old[0], pod):
            self._swap(old[0], pod, node)
            return
        if old is not None:
            self.remove_pod(pod.uid)
        self.pods[pod.uid] = (pod, node)
        if pod.has_pod_affinity:
            self.affinity_pods[pod.uid] = (pod, node)
        info = self.table.info(node)
        if info is None:
            self.orphans.setdefault(node, {})[pod.uid] = pod
        else:
            self._charge(info, pod, 1)

    def _swap(self, old: PodInfo, pod: PodInfo, node: str) -> None:
        """Same node, same requests, ports, labels: replace the object without recharging anything."""
        self.pods[pod.uid] = (pod, node)
        if pod.has_pod_affinity:
            self.affinity_pods[pod.uid] = (pod, node)
        else:
            self.affinity_pods.pop(pod.uid, None)
        info = self.table.info(node)
        if info is not None:
            info.pods[pod.uid] = pod
        elif node in self.orphans:
            self.orphans[node][pod.uid] = pod

    def remove_pod(self, uid: str) -> tuple[PodInfo, str] | None:
        entry = self.pods.pop(uid, None)
        if entry is None:
            return None
        _pod, node = entry
        self.assumed.discard(uid)
        self.affinity_pods.pop(uid, None)
        info = self.table.info(node)
        if info is not None and uid in info.pods:
            self._charge(info, info.pods[uid], -1)
        elif node in self.orphans:
            self.orphans[node].pop(uid, None)
            if not self.orphans[node]:
                del self.orphans[node]
        return entry

    def _charge(self, info: NodeInfo, pod: PodInfo, sign: int) -> None:
        self.table.charge(info, pod, sign)
        if sign > 0:
            info.pods[pod.uid] = pod
        else:
            info.pods.pop(pod.uid, None)
        if len(self.counters):
            self.counters.change(pod, info.row, sign)

    def assume(self, pod: PodInfo, node: str) -> None:
        """Charge a pod to the node it was just given, before the binding is confirmed."""
        self.add_pod(pod, node)
        self.assumed.add(pod.uid)

    def forget(self, uid: str) -> None:
        """Take back an assumed pod whose binding failed (a confirmed one stays)."""
        if uid in self.assumed:
            self.remove_pod(uid)

    def is_assumed(self, uid: str) -> bool:
        return uid in self.assumed

    def placed(self) -> Iterator[tuple[PodInfo, int]]:
        """Every pod on a known node, with its row."""
        for info in self.nodes():
            for pod in info.pods.values():
                yield pod, info.row

    # -- nominations (preemption) ---------------------------------------------------------------------------

    def nominate(self, pod: PodInfo, node: str) -> None:
        self.clear_nomination(pod.uid)
        if node:
            self.nominated.setdefault(node, {})[pod.uid] = pod
            self._nominated_at[pod.uid] = node

    def clear_nomination(self, uid: str) -> None:
        node = self._nominated_at.pop(uid, None)
        if node is not None:
            pods = self.nominated.get(node, {})
            pods.pop(uid, None)
            if not pods:
                self.nominated.pop(node, None)

    def nominated_node_of(self, uid: str) -> str:
        return self._nominated_at.get(uid, "")

    # -- derived, cached data -------------------------------------------------------------------------------

    def pod_counts(self, key: Hashable, match: Matcher) -> Counts:
        """Per-row count of placed pods that ``match`` (see counters); ``key`` names the matcher."""
        return self.counters.counts(key, match, self.placed(), self.table.capacity)

    def cached_mask(self, key: Hashable, epoch: int, build: Callable[[], Mask]) -> Mask:
        """A per-row mask that stays valid while ``epoch`` (labels_epoch or taints_epoch) is unchanged."""
        hit = self._masks.get(key)
        if hit is not None and hit[0] == epoch and hit[1].shape[0] == self.table.size:
            self._masks.move_to_end(key)
            return hit[1]
        mask = build()
        self._masks[key] = (epoch, mask)
        if len(self._masks) > 1024:
            self._masks.popitem(last=False)
        return mask

    def label_mask(self, key: Hashable, test: Callable[[NodeInfo], bool]) -> Mask:
        """Rows whose node passes ``test`` (a function of labels/name only), cached per labels epoch."""
        table = self.table

        def build() -> Mask:
            mask = np.zeros(table.size, np.bool_)
            for info in self.nodes():
                mask[info.row] = test(info)
            return mask

        return self.cached_mask(("labels", key), table.labels_epoch, build)

    def domains(self, key: str) -> tuple[DomainIds, list[str]]:
        """Topology domain of each row for label ``key``: ids into the returned values, -1 without the label."""
        table = self.table
        hit = self._domains.get(key)
        if hit is not None and hit[0] == table.labels_epoch and hit[1].shape[0] == table.size:
            return hit[1], hit[2]
        ids = np.full(table.size, -1, np.int64)
        values: list[str] = []
        index: dict[str, int] = {}
        for info in self.nodes():
            value = info.labels.get(key)
            if value is not None:
                if value not in index:
                    index[value] = len(values)
                    values.append(value)
                ids[info.row] = index[value]
        self._domains[key] = (table.labels_epoch, ids, values)
        return ids, values

    def rows_named(self, names: Iterable[str]) -> Mask:
        mask = np.zeros(self.table.size, np.bool_)
        for name in names:
            row = self.table.rows.get(name)
            if row is not None:
                mask[row] = True
        return mask

    def namespace_labels_changed(self) -> None:
        """Counters that select namespaces by label may now count differently: drop them."""
        self.counters.drop(lambda key: not (isinstance(key, tuple) and key and key[0] == "nsselector"))


def _same_footprint(a: PodInfo, b: PodInfo) -> bool:
    return (a.requests == b.requests and a.ports == b.ports and a.labels == b.labels
            and a.terminating == b.terminating and a.nonzero_cpu == b.nonzero_cpu and a.nonzero_mem == b.nonzero_mem
            and a.namespace == b.namespace)


def counts_by_domain(counts: Counts, ids: DomainIds, eligible: Mask, n_domains: int) -> Counts:
    """Sum ``counts`` of eligible rows per domain id (rows with id -1 ignored)."""
    take = eligible & (ids >= 0)
    return np.bincount(ids[take], weights=counts[: ids.shape[0]][take], minlength=n_domains).astype(np.int64)
