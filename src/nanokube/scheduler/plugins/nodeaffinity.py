"""NodeAffinity: ``nodeSelector`` and required node affinity filter nodes; preferred terms add their weights.

The matching itself (kube's ``nodeaffinity.NodeSelector``: terms ORed, the expressions and fields inside one
term ANDed, an empty term matching nothing) is ``nanokube.api.nodeaffinity``, shared with DaemonSet placement;
this plugin turns it into node masks. Terms that pin ``metadata.name`` (DaemonSet pods) narrow the nodes at
PreFilter, as kube's PreFilterResult does. Masks are cached per selector until node labels change.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from nanokube.api import nodeaffinity as shared

from ..framework import SKIP, Code, CycleState, FilterResult, Mask, PreFilterResult, Rows, Scores, Status
from ..podinfo import PodInfo
from ..snapshot import Snapshot
from ..table import NodeInfo
from .taints import normalize

JSON = dict[str, Any]
REASON = "node(s) didn't match Pod's node affinity/selector"
CONFLICT = "pod affinity terms conflict"
NAME_FIELD = shared.NAME_FIELD


def term_matches(term: JSON, info: NodeInfo) -> bool:
    """One node selector term against a cached node row (also used by VolumeBinding for PV node affinity)."""
    return shared.term_matches(term, info.name, info.labels)


def required_terms(pod: PodInfo) -> list[JSON] | None:
    """The required node selector terms, or None when the pod has none."""
    return shared.required_terms(pod.spec)


def preferred_terms(pod: PodInfo) -> list[tuple[int, JSON]]:
    affinity = (pod.spec.get("affinity") or {}).get("nodeAffinity") or {}
    out = []
    for item in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if isinstance(item, dict) and isinstance(item.get("preference"), dict) and item.get("weight"):
            out.append((int(item["weight"]), item["preference"]))
    return out


def node_matches(pod: PodInfo, info: NodeInfo) -> bool:
    """Whether a node satisfies the pod's nodeSelector and required node affinity (also used by spread)."""
    return shared.pod_matches_node(pod.spec, info.name, info.labels)


def affinity_mask(pod: PodInfo, snap: Snapshot) -> Mask | None:
    """Rows matching the pod's nodeSelector and required node affinity; None when it has neither."""
    selector = pod.spec.get("nodeSelector") or {}
    terms = required_terms(pod)
    if not selector and terms is None:
        return None
    key = ("nodeaffinity", json.dumps([selector, terms], sort_keys=True))
    return snap.label_mask(key, lambda info: node_matches(pod, info))


def _pinned_names(terms: list[JSON]) -> set[str] | None:
    """Node names the terms pin through ``metadata.name In``; None when some term does not pin."""
    names: set[str] = set()
    for term in terms:
        pinned: set[str] | None = None
        for f in term.get("matchFields") or []:
            if isinstance(f, dict) and f.get("key") == NAME_FIELD and f.get("operator") == "In":
                values = {str(v) for v in f.get("values") or []}
                pinned = values if pinned is None else pinned & values
        if pinned is None:
            return None
        names |= pinned
    return names


class NodeAffinity:
    name = "NodeAffinity"

    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        terms = required_terms(pod)
        if not pod.spec.get("nodeSelector") and terms is None:
            return None, SKIP
        if terms:
            names = _pinned_names(terms)
            if names is not None and not names:
                return None, Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, CONFLICT)
            if names:
                return PreFilterResult(names), Status()
        return None, Status()

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        passed = affinity_mask(pod, snap)
        if passed is None:
            return None
        return FilterResult.reject(passed, REASON, unresolvable=True)

    def pre_score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Status:
        return Status() if preferred_terms(pod) else SKIP

    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        total = np.zeros(rows.shape[0], np.int64)
        for weight, term in preferred_terms(pod):
            key = ("nodepreference", json.dumps(term, sort_keys=True))
            mask = snap.label_mask(key, lambda info, t=term: term_matches(t, info))  # type: ignore[misc]
            total += weight * mask[rows]
        return normalize(total)
