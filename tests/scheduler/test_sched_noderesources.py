"""NodeResourcesFit (reasons, unresolvable, nominated pods) and the LeastAllocated, MostAllocated and
BalancedAllocation scores against kube's integer formulas worked by hand."""

from __future__ import annotations

import numpy as np
from sched_helpers import info, node, passed, pod, reasons, run_filter, snapshot

from nanokube.scheduler.framework import CycleState
from nanokube.scheduler.plugins.noderesources import MOST_ALLOCATED, BalancedAllocation, NodeResourcesFit


def test_fit_reasons_per_node() -> None:
    snap = snapshot([node("small", cpu="1"), node("busy"), node("full", pods="1"), node("roomy")],
                    [(pod("x", cpu="3500m"), "busy"), (pod("y"), "full")])
    result, _, _ = run_filter(NodeResourcesFit(), info(pod("p", cpu="2", memory="1Gi")), snap)
    assert passed(snap, result) == {"roomy"}
    assert reasons(snap, result, "small") == ["Insufficient cpu"]
    assert reasons(snap, result, "busy") == ["Insufficient cpu"]
    assert reasons(snap, result, "full") == ["Too many pods"]
    assert result is not None and not isinstance(result.unresolvable, bool)
    unresolvable = {n for n in ("small", "busy", "full") if result.unresolvable[snap.table.rows[n]]}
    assert unresolvable == {"small"}  # only there would evicting everything not help


def test_extended_resources_missing_on_a_node_are_insufficient_and_unresolvable() -> None:
    snap = snapshot([node("plain"), node("gpu", extra={"example.com/gpu": "2"})])
    gpu_pod = pod("p")
    gpu_pod["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    result, _, _ = run_filter(NodeResourcesFit(), info(gpu_pod), snap)
    assert passed(snap, result) == {"gpu"}
    assert reasons(snap, result, "plain") == ["Insufficient example.com/gpu"]


def test_pod_without_requests_only_needs_a_pod_slot() -> None:
    snap = snapshot([node("a", cpu="0", memory="0")])
    result, _, _ = run_filter(NodeResourcesFit(), info(pod("p", cpu=None, memory=None)), snap)
    assert passed(snap, result) == {"a"}


def test_nominated_pods_of_higher_or_equal_priority_count_as_running() -> None:
    snap = snapshot([node("a"), node("b")])
    big = info(pod("big", cpu="3", priority=100))
    snap.nominate(big, "a")
    result, _, _ = run_filter(NodeResourcesFit(), info(pod("p", cpu="2", priority=100)), snap)
    assert passed(snap, result) == {"b"}
    result, _, _ = run_filter(NodeResourcesFit(), info(pod("q", cpu="2", priority=1000)), snap)
    assert passed(snap, result) == {"a", "b"}
    # the nominated pod itself is not in its own way
    result, _, _ = run_filter(NodeResourcesFit(), big, snap)
    assert passed(snap, result) == {"a", "b"}


def scores(plugin: object, snap: object, p: object, names: list[str]) -> list[int]:
    rows = np.array([snap.table.rows[n] for n in names])  # type: ignore[attr-defined]
    return list(plugin.score(CycleState(), p, snap, rows))  # type: ignore[attr-defined]


def test_least_and_most_allocated() -> None:
    snap = snapshot([node("used"), node("empty")], [(pod("x", cpu="1", memory="2Gi"), "used")])
    p = info(pod("p", cpu="1", memory="2Gi"))
    # used: cpu (4000-2000)*100/4000 = 50, memory (8-4)/8 = 50; empty: 75 and 75
    assert scores(NodeResourcesFit(), snap, p, ["used", "empty"]) == [50, 75]
    assert scores(NodeResourcesFit(MOST_ALLOCATED), snap, p, ["used", "empty"]) == [50, 25]
    # weights: memory counted three times as much as cpu
    skew = snapshot([node("a")], [(pod("x", cpu="3", memory="0"), "a")])
    weighted = NodeResourcesFit(weights={"cpu": 1, "memory": 3})
    # cpu: (4000-3100)*100//4000 = 22; memory: (8Gi-100Mi)*100//8Gi = 98 -> (22 + 3*98) // 4 = 79
    assert scores(weighted, skew, info(pod("p", cpu="100m", memory="100Mi")), ["a"]) == [79]


def test_unset_requests_score_as_100m_and_200mi() -> None:
    snap = snapshot([node("a", cpu="1", memory="1Gi")])
    # cpu (1000-100)*100/1000 = 90; memory (1024-200)*100/1024 = 80.4 -> 80; (90+80)//2 = 85
    assert scores(NodeResourcesFit(), snap, info(pod("p", cpu=None, memory=None)), ["a"]) == [85]


def test_balanced_allocation() -> None:
    snap = snapshot([node("even"), node("lopsided", memory="16Gi")])
    p = info(pod("p", cpu="1", memory="2Gi"))
    # even: .25 and .25 -> 100; lopsided: .25 and .125 -> (1 - .0625) * 100 = 93
    assert scores(BalancedAllocation(), snap, p, ["even", "lopsided"]) == [100, 93]
    assert BalancedAllocation().pre_score(CycleState(), info(pod("b", cpu=None, memory=None)), snap,
                                          np.array([0])).skip
