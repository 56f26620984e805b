"""InterPodAffinity: required affinity (and the first pod of a group), anti-affinity, existing pods'
anti-affinity, namespace selectors, and preferred-term scores."""

from __future__ import annotations

from typing import Any

import numpy as np
from sched_helpers import info, node, passed, pod, reasons, run_filter, snapshot

from nanokube.scheduler.framework import CycleState
from nanokube.scheduler.plugins.interpodaffinity import (
    AFFINITY_REASON,
    ANTI_AFFINITY_REASON,
    EXISTING_ANTI_AFFINITY_REASON,
    InterPodAffinity,
)


def term(labels: dict[str, str], key: str = "zone", **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def required(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def cluster(*placed: tuple[dict[str, Any], str]) -> Any:
    return snapshot([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}),
                     node("c", labels={"zone": "z2"}), node("d")], placed)


def test_required_affinity_needs_a_matching_pod_in_the_domain() -> None:
    snap = cluster((pod("db", labels={"app": "db"}), "a"))
    p = info(pod("p", affinity=required("podAffinity", term({"app": "db"}))))
    result, _, _ = run_filter(InterPodAffinity(), p, snap)
    assert passed(snap, result) == {"a", "b"}
    assert reasons(snap, result, "c") == [AFFINITY_REASON]
    assert reasons(snap, result, "d") == [AFFINITY_REASON]  # no zone label at all
    assert result is not None and result.unresolvable is not False


def test_the_first_pod_of_a_self_attracted_group_may_go_anywhere_with_the_label() -> None:
    snap = cluster()
    p = info(pod("p", labels={"app": "web"}, affinity=required("podAffinity", term({"app": "web"}))))
    assert passed(snap, run_filter(InterPodAffinity(), p, snap)[0]) == {"a", "b", "c"}
    stranger = info(pod("q", affinity=required("podAffinity", term({"app": "web"}))))
    assert passed(snap, run_filter(InterPodAffinity(), stranger, snap)[0]) == set()


def test_required_anti_affinity() -> None:
    snap = cluster((pod("w1", labels={"app": "web"}), "a"))
    p = info(pod("p", labels={"app": "web"},
                 affinity=required("podAntiAffinity", term({"app": "web"}, "kubernetes.io/hostname"))))
    result, _, _ = run_filter(InterPodAffinity(), p, snap)
    assert passed(snap, result) == {"b", "c", "d"}
    assert reasons(snap, result, "a") == [ANTI_AFFINITY_REASON]
    assert result is not None and not isinstance(result.unresolvable, bool)
    assert not result.unresolvable[snap.table.rows["a"]]  # preemption may help


def test_existing_pods_anti_affinity_keeps_matching_pods_out_of_their_domain() -> None:
    loner = pod("loner", affinity=required("podAntiAffinity", term({"app": "web"})))
    snap = cluster((loner, "c"))
    result, _, _ = run_filter(InterPodAffinity(), info(pod("p", labels={"app": "web"})), snap)
    assert passed(snap, result) == {"a", "b", "d"}
    assert reasons(snap, result, "c") == [EXISTING_ANTI_AFFINITY_REASON]
    _, _, status = run_filter(InterPodAffinity(), info(pod("q", labels={"app": "db"})), snap)
    assert status.skip


def test_terms_select_namespaces_by_name_or_label() -> None:
    other = pod("db", namespace="data", labels={"app": "db"})
    snap = cluster((other, "c"))
    snap.namespace_labels = lambda ns: {"team": "data"} if ns == "data" else {}
    same_ns = info(pod("p", affinity=required("podAffinity", term({"app": "db"}))))
    assert passed(snap, run_filter(InterPodAffinity(), same_ns, snap)[0]) == set()
    by_name = info(pod("q", affinity=required("podAffinity", term({"app": "db"}, namespaces=["data"]))))
    assert passed(snap, run_filter(InterPodAffinity(), by_name, snap)[0]) == {"c"}
    by_label = info(pod("r", affinity=required("podAffinity", term(
        {"app": "db"}, namespaceSelector={"matchLabels": {"team": "data"}}))))
    assert passed(snap, run_filter(InterPodAffinity(), by_label, snap)[0]) == {"c"}


def test_preferred_terms_score_by_domain() -> None:
    snap = cluster((pod("db", labels={"app": "db"}), "a"), (pod("noisy", labels={"app": "noisy"}), "c"))
    preferred = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": term({"app": "db"})}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "podAffinityTerm": term({"app": "noisy"})}]}}
    p = info(pod("p", affinity=preferred))
    plugin = InterPodAffinity()
    rows = np.array([snap.table.rows[n] for n in ("a", "b", "c", "d")])
    state = CycleState()
    assert plugin.pre_score(state, p, snap, rows).success
    # raw: a, b = 10 (z1 has the db); c = -5 (z2 has the noisy pod); d = 0 -> min-max normalised
    assert list(plugin.score(state, p, snap, rows)) == [100, 100, 0, 33]
    assert plugin.pre_score(CycleState(), info(pod("plain")), snap, rows).skip
