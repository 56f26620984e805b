"""PodTopologySpread: ``DoNotSchedule`` constraints filter, ``ScheduleAnyway`` constraints score.

Counts come from per-selector pod columns (``Snapshot.pod_counts``) summed per topology domain with ``bincount``,
so a cycle costs a few array passes however many pods exist. Semantics follow kube's plugin: only nodes that
pass the pod's node affinity (nodeAffinityPolicy Honor) and, if asked, its tolerations (nodeTaintsPolicy) and
that carry every constraint's key form domains; skew = pods in the node's domain + the pod itself - the
smallest domain (0 when fewer domains than minDomains). Pods with no constraints that belong to a Service,
ReplicaSet, StatefulSet or ReplicationController get kube's system defaults (hostname maxSkew 3, zone maxSkew 5,
ScheduleAnyway) over the merged selector of those owners. Scores are ``count * log(domains + 2) + maxSkew - 1``
summed over constraints, normalised so the least crowded node gets 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nanokube.api.labels import IN, Requirement, Selector, selector_from_label_selector, selector_from_set

from ..framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    FilterResult,
    Mask,
    PreFilterResult,
    Rows,
    Scores,
    Status,
)
from ..handle import Handle
from ..podinfo import PodInfo
from ..snapshot import Snapshot
from .nodeaffinity import affinity_mask
from .taints import tolerated_mask

JSON = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
NOT_MATCH = "node(s) didn't match pod topology spread constraints"
_OWNER_KINDS = {("apps", "ReplicaSet"): "replicasets", ("apps", "StatefulSet"): "statefulsets"}


@dataclass(frozen=True, slots=True, eq=False)
class Constraint:
    max_skew: int
    key: str
    selector: Selector
    min_domains: int = 1
    honor_affinity: bool = True
    honor_taints: bool = False


def _selector(raw: Any) -> Selector:
    try:
        return selector_from_label_selector(raw if isinstance(raw, dict) else None)
    except ValueError:
        return Selector.nothing()


def explicit_constraints(pod: PodInfo, action: str) -> list[Constraint]:
    out = []
    for raw in pod.spec.get("topologySpreadConstraints") or []:
        if not isinstance(raw, dict) or raw.get("whenUnsatisfiable") != action:
            continue
        selector = _selector(raw.get("labelSelector"))
        for key in raw.get("matchLabelKeys") or []:
            if key in pod.labels:
                selector = selector.add(Requirement(key, IN, (pod.labels[key],)))
        out.append(Constraint(int(raw.get("maxSkew") or 1), str(raw.get("topologyKey") or ""), selector,
                              int(raw.get("minDomains") or 1), raw.get("nodeAffinityPolicy", "Honor") != "Ignore",
                              raw.get("nodeTaintsPolicy", "Ignore") == "Honor"))
    return out


def default_selector(pod: PodInfo, handle: Handle) -> Selector:
    """kube's ``helper.DefaultSelector``: Services selecting the pod, plus its controller's selector."""
    labels: dict[str, str] = {}
    for service in handle.items("services", pod.namespace):
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector and all(pod.labels.get(k) == v for k, v in selector.items()):
            labels.update(selector)
    selector = selector_from_set(labels)
    owner = next((o for o in (pod.pod.get("metadata") or {}).get("ownerReferences") or []
                  if isinstance(o, dict) and o.get("controller")), None)
    if owner is None:
        return selector
    group = str(owner.get("apiVersion") or "").rpartition("/")[0]
    if (group, owner.get("kind")) == ("", "ReplicationController"):
        rc = handle.get("replicationcontrollers", pod.namespace, str(owner.get("name")))
        if rc is not None:
            labels.update((rc.get("spec") or {}).get("selector") or {})
            selector = selector_from_set(labels)
        return selector
    plural = _OWNER_KINDS.get((group, str(owner.get("kind"))))
    owner_obj = handle.get(plural, pod.namespace, str(owner.get("name"))) if plural else None
    if owner_obj is not None:
        other = _selector((owner_obj.get("spec") or {}).get("selector"))
        if not other.matches_nothing:
            selector = selector.add(*other.requirements)
    return selector


def pod_matcher(namespace: str, selector: Selector) -> Any:
    def match(other: PodInfo) -> bool:
        return other.namespace == namespace and not other.terminating and selector.matches(other.labels)

    return match


class PodTopologySpread:
    name = "PodTopologySpread"

    def __init__(self, handle: Handle | None = None, *, system_defaults: bool = True) -> None:
        self.handle = handle or Handle()
        self.system_defaults = system_defaults

    def _counts(self, pod: PodInfo, snap: Snapshot, c: Constraint) -> np.ndarray:
        key = ("spread", pod.namespace, repr(c.selector))
        return snap.pod_counts(key, pod_matcher(pod.namespace, c.selector))[: snap.table.size]

    def _eligible(self, pod: PodInfo, snap: Snapshot, c: Constraint) -> Mask:
        table = snap.table
        mask = table.alive[: table.size].copy()
        if c.honor_affinity:
            affinity = affinity_mask(pod, snap)
            if affinity is not None:
                mask &= affinity
        if c.honor_taints:
            taints = tolerated_mask(pod, snap)
            if taints is not None:
                mask &= taints
        return mask

    # -- filter ---------------------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        constraints = explicit_constraints(pod, "DoNotSchedule")
        if not constraints:
            return None, SKIP
        has_all = snap.table.alive[: snap.table.size].copy()
        for c in constraints:
            has_all &= snap.domains(c.key)[0] >= 0
        plans = []
        for c in constraints:
            ids, values = snap.domains(c.key)
            eligible = self._eligible(pod, snap, c) & has_all
            per_domain = np.bincount(ids[eligible], weights=self._counts(pod, snap, c)[eligible],
                                     minlength=len(values)).astype(np.int64)
            present = np.unique(ids[eligible])
            if present.shape[0] == 0:
                minimum = 2**31
            elif present.shape[0] < c.min_domains:
                minimum = 0
            else:
                minimum = int(per_domain[present].min())
            plans.append((c, ids, per_domain, minimum, 1 if c.selector.matches(pod.labels) else 0))
        state.data[self.name] = plans
        return None, Status()

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        plans = state.data.get(self.name)
        if not plans:
            return None
        size = snap.table.size
        decided = np.zeros(size, np.bool_)
        missing = np.zeros(size, np.bool_)
        skewed = np.zeros(size, np.bool_)
        for c, ids, per_domain, minimum, self_match in plans:
            lacks = (ids < 0) & ~decided
            missing |= lacks
            decided |= lacks
            matched = np.where(ids >= 0, per_domain[np.maximum(ids, 0)] if per_domain.shape[0] else 0, 0)
            over = (matched + self_match - minimum > c.max_skew) & ~decided
            skewed |= over
            decided |= over
        if not decided.any():
            return None
        return FilterResult(~decided, [(MISSING_LABEL, missing), (NOT_MATCH, skewed)], missing)

    # -- score ----------------------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Status:
        constraints = explicit_constraints(pod, "ScheduleAnyway")
        require_all = True
        if not constraints and not pod.spec.get("topologySpreadConstraints") and self.system_defaults:
            selector = default_selector(pod, self.handle)
            if not selector.empty:
                constraints = [Constraint(3, HOSTNAME, selector), Constraint(5, ZONE, selector)]
                require_all = False
        if not constraints:
            return SKIP
        state.data[self.name + "/score"] = (constraints, require_all)
        return Status()

    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        constraints, require_all = state.data[self.name + "/score"]
        size = snap.table.size
        has_all = snap.table.alive[:size].copy()
        if require_all:
            for c in constraints:
                has_all &= snap.domains(c.key)[0] >= 0
        ignored = ~has_all[rows]
        scored = int(np.count_nonzero(~ignored))
        total = np.zeros(rows.shape[0], np.float64)
        for c in constraints:
            ids, values = snap.domains(c.key)
            counts = self._counts(pod, snap, c)
            if c.key == HOSTNAME:
                per_row = counts[rows]
                domains = scored
            else:
                ids_all = np.where(ids < 0, len(values), ids)  # kube pairs a missing label with value ""
                present = np.unique(ids_all[rows][~ignored])
                eligible = self._eligible(pod, snap, c) & has_all
                per_domain = np.bincount(ids_all[eligible], weights=counts[eligible], minlength=len(values) + 1)
                per_row = per_domain[ids_all[rows]]
                domains = int(present.shape[0])
            weight = math.log(domains + 2)
            total += np.where(ids[rows] >= 0, per_row * weight + (c.max_skew - 1), 0.0)
        raw = np.floor(total + 0.5).astype(np.int64)
        return _normalize(raw, ignored)


def _normalize(raw: Scores, ignored: Mask) -> Scores:
    valid = ~ignored
    out = np.zeros(raw.shape[0], np.int64)
    if not valid.any():
        return out
    low, high = int(raw[valid].min()), int(raw[valid].max())
    if high == 0:
        out[valid] = MAX_NODE_SCORE
    else:
        out[valid] = MAX_NODE_SCORE * (high + low - raw[valid]) // high
    return out
