"""PodTopologySpread: DoNotSchedule skew filter (missing labels, minDomains), ScheduleAnyway and system-default
scores, and counts that follow pods as they come and go."""

from __future__ import annotations

from typing import Any

import numpy as np
from sched_helpers import info, node, passed, pod, reasons, run_filter, snapshot

from nanokube.scheduler.framework import CycleState
from nanokube.scheduler.handle import Handle
from nanokube.scheduler.plugins.topologyspread import MISSING_LABEL, NOT_MATCH, PodTopologySpread

WEB = {"app": "web"}


def constraint(key: str = "zone", skew: int = 1, action: str = "DoNotSchedule", **extra: Any) -> dict[str, Any]:
    return {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": action,
            "labelSelector": {"matchLabels": WEB}, **extra}


def web(name: str, **spec: Any) -> dict[str, Any]:
    return pod(name, labels=WEB, **spec)


def zones() -> list[dict[str, Any]]:
    return [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}), node("c", labels={"zone": "z2"})]


def test_skew_over_max_is_rejected() -> None:
    snap = snapshot([*zones(), node("d")], [(web("w1"), "a"), (web("w2"), "a"), (pod("other"), "c")])
    result, _, _ = run_filter(PodTopologySpread(), info(web("p", topologySpreadConstraints=[constraint()])), snap)
    assert passed(snap, result) == {"c"}
    assert reasons(snap, result, "a") == [NOT_MATCH]
    assert reasons(snap, result, "d") == [MISSING_LABEL]
    assert result is not None and not isinstance(result.unresolvable, bool)
    assert result.unresolvable[snap.table.rows["d"]] and not result.unresolvable[snap.table.rows["a"]]


def test_pods_that_do_not_match_their_own_selector_add_no_self_count() -> None:
    snap = snapshot(zones(), [(web("w1"), "a")])
    # z1 has 1, z2 has 0; a pod outside the selector adds nothing: 1 + 0 - 0 <= 1 everywhere
    result, _, _ = run_filter(PodTopologySpread(), info(pod("p", topologySpreadConstraints=[constraint()])), snap)
    assert result is None


def test_min_domains_treats_missing_domains_as_empty() -> None:
    placed = [(web("w1"), "a"), (web("w2"), "a"), (web("w3"), "c")]
    snap = snapshot(zones(), placed)
    spread = [constraint()]
    assert passed(snap, run_filter(PodTopologySpread(), info(web("p", topologySpreadConstraints=spread)), snap)[0]) \
        == {"c"}  # z2: 1 + 1 - 1 = 1
    spread = [constraint(minDomains=3)]  # only 2 zones: the minimum counts as 0
    assert passed(snap, run_filter(PodTopologySpread(), info(web("p", topologySpreadConstraints=spread)), snap)[0]) \
        == set()


def test_node_affinity_decides_which_nodes_form_domains() -> None:
    snap = snapshot(zones(), [(web("w1"), "c")])
    spread = [constraint()]
    selector = {"zone": "z2"}
    # only z2 is eligible: it is the only domain, min = 1, 1 + 1 - 1 <= 1
    result, _, _ = run_filter(PodTopologySpread(), info(web("p", topologySpreadConstraints=spread,
                                                             nodeSelector=selector)), snap)
    assert passed(snap, result) >= {"c"}
    ignored = [constraint(nodeAffinityPolicy="Ignore")]
    result, _, _ = run_filter(PodTopologySpread(), info(web("p", topologySpreadConstraints=ignored,
                                                             nodeSelector=selector)), snap)
    assert "c" not in passed(snap, result)  # z1 (0) now counts: 1 + 1 - 0 > 1


def score(plugin: PodTopologySpread, snap: Any, p: Any, names: list[str]) -> list[int] | None:
    rows = np.array([snap.table.rows[n] for n in names])
    state = CycleState()
    if plugin.pre_score(state, p, snap, rows).skip:
        return None
    return list(plugin.score(state, p, snap, rows))


def test_schedule_anyway_prefers_the_emptier_nodes() -> None:
    snap = snapshot(zones(), [(web("w1"), "a"), (web("w2"), "a")])
    p = info(web("p", topologySpreadConstraints=[constraint("kubernetes.io/hostname", action="ScheduleAnyway")]))
    # a: 2 * ln(5) = 3.2 -> 3; b, c: 0; normalised 100 * (3 + 0 - s) / 3
    assert score(PodTopologySpread(), snap, p, ["a", "b", "c"]) == [0, 100, 100]


def test_system_default_constraints_for_pods_of_a_replicaset() -> None:
    rs = {"metadata": {"name": "rs", "namespace": "default"}, "spec": {"selector": {"matchLabels": WEB}}}
    handle = Handle(caches={"replicasets": {"default/rs": rs}})
    snap = snapshot([node("a"), node("b"), node("c")], [(web("w1"), "a"), (web("w2"), "a")])
    owned = web("p")
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                             "uid": "u", "controller": True}]
    # hostname, maxSkew 3: a = 2 * ln(5) + 2 = 5.2 -> 5, b = c = 2; normalised 100 * (5 + 2 - s) / 5
    assert score(PodTopologySpread(handle), snap, info(owned), ["a", "b", "c"]) == [40, 100, 100]
    assert score(PodTopologySpread(handle), snap, info(web("loose")), ["a", "b", "c"]) is None
    assert score(PodTopologySpread(handle, system_defaults=False), snap, info(owned), ["a", "b"]) is None


def test_counts_follow_pods_added_and_removed() -> None:
    snap = snapshot(zones())
    p = info(web("p", topologySpreadConstraints=[constraint()]))
    assert run_filter(PodTopologySpread(), p, snap)[0] is None
    w1, w2 = info(web("w1")), info(web("w2"))
    snap.add_pod(w1, "a")
    snap.add_pod(w2, "b")
    assert passed(snap, run_filter(PodTopologySpread(), p, snap)[0]) == {"c"}
    snap.remove_pod(w2.uid)
    assert passed(snap, run_filter(PodTopologySpread(), p, snap)[0]) == {"c"}  # z1 still has w1
    snap.remove_pod(w1.uid)
    assert run_filter(PodTopologySpread(), p, snap)[0] is None
    leaving = web("w3")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    snap.add_pod(info(leaving), "a")
    assert run_filter(PodTopologySpread(), p, snap)[0] is None  # terminating pods do not count
