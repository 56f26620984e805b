"""TaintToleration: NoSchedule/NoExecute taints a pod does not tolerate rule a node out; untolerated
PreferNoSchedule taints lower its score (kube's counts, normalised in reverse).

Only tainted rows are looked at, and the filter mask is cached per distinct toleration list until a taint
changes somewhere, so the many pods sharing a template pay for it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from nanokube.api.taints import tolerates

from ..framework import MAX_NODE_SCORE, SKIP, CycleState, FilterResult, Mask, Rows, Scores, Status
from ..podinfo import PodInfo
from ..snapshot import Snapshot

JSON = dict[str, Any]
REASON = "node(s) had untolerated taint(s)"


def tolerated(tolerations: Iterable[JSON], taint: JSON) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def _tolerations(pod: PodInfo) -> list[JSON]:
    return [t for t in pod.spec.get("tolerations") or [] if isinstance(t, dict)]


def tolerated_mask(pod: PodInfo, snap: Snapshot) -> Mask | None:
    """Rows whose NoSchedule/NoExecute taints the pod tolerates; None when it tolerates them all."""
    table = snap.table
    if not table.tainted:
        return None
    tolerations = _tolerations(pod)
    key = ("taints", json.dumps(tolerations, sort_keys=True))

    def build() -> Mask:
        passed = np.ones(table.size, np.bool_)
        for row in table.tainted:
            info = table.infos[row]
            if info is not None and not all(tolerated(tolerations, t) for t in info.hard_taints()):
                passed[row] = False
        return passed

    passed = snap.cached_mask(key, table.taints_epoch, build)
    return None if passed.all() else passed


class TaintToleration:
    name = "TaintToleration"

    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        passed = tolerated_mask(pod, snap)
        if passed is None:
            return None
        return FilterResult.reject(passed, REASON, unresolvable=True)

    def pre_score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Status:
        # Without PreferNoSchedule taints every node scores the same: leave the plugin out.
        return SKIP if not snap.table.soft_tainted else Status()

    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        table = snap.table
        soft = [t for t in _tolerations(pod) if (t.get("effect") or "") in ("", "PreferNoSchedule")]
        counts = np.zeros(rows.shape[0], np.int64)
        for i, row in enumerate(rows.tolist()):
            if row in table.soft_tainted:
                info = table.infos[row]
                assert info is not None
                counts[i] = sum(1 for t in info.taints
                                if t.get("effect") == "PreferNoSchedule" and not tolerated(soft, t))
        return reverse_normalize(counts)


def reverse_normalize(counts: Scores) -> Scores:
    """kube's DefaultNormalizeScore(reverse=true): fewer is better, all best when none."""
    top = int(counts.max()) if counts.shape[0] else 0
    if top == 0:
        return np.full(counts.shape[0], MAX_NODE_SCORE, np.int64)
    return MAX_NODE_SCORE - (MAX_NODE_SCORE * counts) // top


def normalize(counts: Scores) -> Scores:
    """kube's DefaultNormalizeScore(reverse=false)."""
    top = int(counts.max()) if counts.shape[0] else 0
    if top == 0:
        return np.zeros(counts.shape[0], np.int64)
    return (MAX_NODE_SCORE * counts) // top
