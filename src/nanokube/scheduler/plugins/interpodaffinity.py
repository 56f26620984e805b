"""InterPodAffinity: required pod affinity / anti-affinity filter, preferred terms score.

As kube's plugin: a node fails when (1) a required affinity term finds no matching pod in the node's topology
domain — unless no pod anywhere matches and the pod matches its own terms (the first of a group); (2) a
required anti-affinity term finds a matching pod in the domain; (3) an existing pod's required anti-affinity
term matches this pod and that pod's domain includes the node. Scores add preferred-term weights (subtracting
anti-affinity), plus existing pods' terms that match this pod (their required affinity at weight 1), per
topology domain, normalised to 0..100 over the scored nodes.

Matching pods per node come from shared per-term count columns (``Snapshot.pod_counts``); only pods that carry
affinity terms themselves are walked, and there are usually few.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

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
from ..podinfo import AffinityTerm, NamespaceLabels, PodInfo
from ..snapshot import Snapshot

AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_AFFINITY_WEIGHT = 1


def _key(kind: str, terms: Sequence[AffinityTerm]) -> Hashable:
    uses_labels = any(t.namespace_selector is not None for t in terms)
    return ("nsselector" if uses_labels else kind, tuple(t.signature() for t in terms))


def _counts(snap: Snapshot, terms: Sequence[AffinityTerm], kind: str) -> np.ndarray:
    """Per-row count of pods matching every one of ``terms``."""
    labels: NamespaceLabels = snap.namespace_labels

    def match(other: PodInfo) -> bool:
        return all(t.matches(other, labels) for t in terms)

    return snap.pod_counts(_key(kind, terms), match)[: snap.table.size]


def _per_domain(snap: Snapshot, key: str, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(domain id per row, matching pods per domain) for topology key ``key``."""
    ids, values = snap.domains(key)
    has = ids >= 0
    per_domain = np.bincount(ids[has], weights=counts[has], minlength=len(values)).astype(np.int64)
    return ids, per_domain


def _in_domain(ids: np.ndarray, per_domain: np.ndarray) -> np.ndarray:
    """Pods matching in each row's domain (0 for rows without the label)."""
    if per_domain.shape[0] == 0:
        return np.zeros(ids.shape[0], np.int64)
    return np.where(ids >= 0, per_domain[np.maximum(ids, 0)], 0)


class InterPodAffinity:
    name = "InterPodAffinity"

    def _forbidden(self, pod: PodInfo, snap: Snapshot) -> list[tuple[str, str]]:
        """(topology key, value) domains that existing pods' required anti-affinity closes to this pod."""
        out = []
        for other, node in snap.affinity_pods.values():
            info = snap.node(node)
            if info is None:
                continue
            for term in other.required_anti_affinity:
                value = info.labels.get(term.topology_key)
                if value is not None and term.matches(pod, snap.namespace_labels):
                    out.append((term.topology_key, value))
        return out

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        forbidden = self._forbidden(pod, snap)
        if not pod.required_affinity and not pod.required_anti_affinity and not forbidden:
            return None, SKIP
        state.data[self.name] = forbidden
        return None, Status()

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        size = snap.table.size
        affinity_fail = np.zeros(size, np.bool_)
        if pod.required_affinity:
            affinity_fail = self._affinity_fails(pod, snap)
        anti_fail = np.zeros(size, np.bool_)
        for term in pod.required_anti_affinity:
            ids, per_domain = _per_domain(snap, term.topology_key, _counts(snap, (term,), "anti"))
            anti_fail |= _in_domain(ids, per_domain) > 0
        anti_fail &= ~affinity_fail
        existing_fail = np.zeros(size, np.bool_)
        for key, value in state.data.get(self.name) or []:
            ids, values = snap.domains(key)
            existing_fail |= ids == values.index(value)
        existing_fail &= ~(affinity_fail | anti_fail)
        failed = affinity_fail | anti_fail | existing_fail
        if not failed.any():
            return None
        return FilterResult(~failed, [(AFFINITY_REASON, affinity_fail), (ANTI_AFFINITY_REASON, anti_fail),
                                      (EXISTING_ANTI_AFFINITY_REASON, existing_fail)], affinity_fail)

    def _affinity_fails(self, pod: PodInfo, snap: Snapshot) -> Mask:
        terms = pod.required_affinity
        counts = _counts(snap, terms, "affinity-all")
        lacks = np.zeros(snap.table.size, np.bool_)
        empty = np.zeros(snap.table.size, np.bool_)
        anywhere = 0
        for term in terms:
            ids, per_domain = _per_domain(snap, term.topology_key, counts)
            lacks |= ids < 0
            empty |= _in_domain(ids, per_domain) <= 0
            anywhere += int(per_domain.sum())
        if anywhere == 0 and all(t.matches(pod, snap.namespace_labels) for t in terms):
            return lacks  # the first pod of a group that is attracted to itself
        return lacks | empty

    # -- score ----------------------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Status:
        scores = self._topology_scores(pod, snap)
        if not scores:
            return SKIP
        state.data[self.name + "/score"] = scores
        return Status()

    def _topology_scores(self, pod: PodInfo, snap: Snapshot) -> dict[str, np.ndarray]:
        scores: dict[str, np.ndarray] = {}

        def add(key: str) -> np.ndarray:
            current = scores.get(key)
            if current is None:
                scores[key] = current = np.zeros(len(snap.domains(key)[1]), np.int64)
            return current

        for terms, sign in ((pod.preferred_affinity, 1), (pod.preferred_anti_affinity, -1)):
            for term in terms:
                _ids, per_domain = _per_domain(snap, term.topology_key, _counts(snap, (term,), "pref"))
                if per_domain.any():
                    add(term.topology_key)[: per_domain.shape[0]] += sign * term.weight * per_domain
        for other, node in snap.affinity_pods.values():
            info = snap.node(node)
            if info is None or not info.labels:
                continue
            weighted: list[tuple[AffinityTerm, int]] = [(t, HARD_AFFINITY_WEIGHT) for t in other.required_affinity]
            weighted += [(t, t.weight) for t in other.preferred_affinity]
            weighted += [(t, -t.weight) for t in other.preferred_anti_affinity]
            for term, weight in weighted:
                value = info.labels.get(term.topology_key)
                if value is None or not term.matches(pod, snap.namespace_labels):
                    continue
                add(term.topology_key)[snap.domains(term.topology_key)[1].index(value)] += weight
        return scores

    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        scores: dict[str, Any] = state.data[self.name + "/score"]
        raw = np.zeros(rows.shape[0], np.int64)
        for key, per_domain in scores.items():
            if per_domain.shape[0] == 0:
                continue
            ids = snap.domains(key)[0][rows]
            raw += np.where(ids >= 0, per_domain[np.clip(ids, 0, per_domain.shape[0] - 1)], 0)
        low, high = int(raw.min()), int(raw.max())
        if high == low:
            return np.zeros(rows.shape[0], np.int64)
        return (MAX_NODE_SCORE * (raw - low) / (high - low)).astype(np.int64)
