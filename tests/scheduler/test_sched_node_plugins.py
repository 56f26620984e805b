"""NodeName, NodeUnschedulable, NodePorts, TaintToleration and NodeAffinity on hand-made nodes and pods."""

from __future__ import annotations

import numpy as np
from sched_helpers import info, node, passed, pod, reasons, run_filter, snapshot

from nanokube.scheduler.framework import Code, CycleState
from nanokube.scheduler.plugins.basic import NodeName, NodePorts, NodeUnschedulable
from nanokube.scheduler.plugins.nodeaffinity import NodeAffinity
from nanokube.scheduler.plugins.taints import TaintToleration, tolerates


def test_node_name() -> None:
    snap = snapshot([node("a"), node("b")])
    result, _, _ = run_filter(NodeName(), info(pod("p", nodeName="b")), snap)
    assert passed(snap, result) == {"b"}
    assert reasons(snap, result, "a") == ["node(s) didn't match the requested node name"]
    assert run_filter(NodeName(), info(pod("q")), snap)[0] is None


def test_cordoned_nodes_take_only_pods_tolerating_the_unschedulable_taint() -> None:
    snap = snapshot([node("a", unschedulable=True), node("b")])
    result, _, _ = run_filter(NodeUnschedulable(), info(pod("p")), snap)
    assert passed(snap, result) == {"b"}
    assert reasons(snap, result, "a") == ["node(s) were unschedulable"]
    tolerant = pod("q", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                      "effect": "NoSchedule"}])
    assert run_filter(NodeUnschedulable(), info(tolerant), snap)[0] is None


def test_host_ports_conflict_with_pods_already_on_the_node() -> None:
    web = {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]}
    holder = pod("holder", **web)
    snap = snapshot([node("a"), node("b")], [(holder, "a")])
    result, _, _ = run_filter(NodePorts(), info(pod("p", **web)), snap)
    assert passed(snap, result) == {"b"}
    assert reasons(snap, result, "a") == ["node(s) didn't have free ports for the requested pod ports"]
    _, _, status = run_filter(NodePorts(), info(pod("plain")), snap)
    assert status.skip  # no host ports: the filter is skipped


def test_toleration_matching() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert tolerates({"key": "k", "value": "v", "effect": "NoSchedule"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)


def test_untolerated_hard_taints_filter_soft_ones_score() -> None:
    hard = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    soft = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}
    snap = snapshot([node("hard", taints=[hard]), node("soft", taints=[soft]), node("clean")])
    plugin = TaintToleration()
    result, _, _ = run_filter(plugin, info(pod("p")), snap)
    assert passed(snap, result) == {"soft", "clean"}
    assert reasons(snap, result, "hard") == ["node(s) had untolerated taint(s)"]
    assert result is not None and result.unresolvable is True
    tolerating = info(pod("t", tolerations=[{"key": "dedicated", "operator": "Exists"}]))
    assert run_filter(plugin, tolerating, snap)[0] is None
    rows = np.array([snap.table.rows["soft"], snap.table.rows["clean"]])
    state = CycleState()
    assert plugin.pre_score(state, info(pod("p")), snap, rows).success
    assert list(plugin.score(state, info(pod("p")), snap, rows)) == [0, 100]


def test_node_selector_and_required_affinity() -> None:
    snap = snapshot([node("a", labels={"zone": "z1", "disk": "ssd"}), node("b", labels={"zone": "z2"}),
                     node("c", labels={"zone": "z3", "gen": "5"})])
    plugin = NodeAffinity()
    result, _, _ = run_filter(plugin, info(pod("p", nodeSelector={"disk": "ssd"})), snap)
    assert passed(snap, result) == {"a"}
    assert reasons(snap, result, "b") == ["node(s) didn't match Pod's node affinity/selector"]
    terms = [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]},
             {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]
    affine = pod("q", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                                 {"nodeSelectorTerms": terms}}})
    assert passed(snap, run_filter(plugin, info(affine), snap)[0]) == {"b", "c"}
    not_in = [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]
    avoid = pod("r", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                                {"nodeSelectorTerms": not_in}}})
    assert passed(snap, run_filter(plugin, info(avoid), snap)[0]) == {"b", "c"}
    empty_term = pod("s", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                                     {"nodeSelectorTerms": [{}]}}})
    assert passed(snap, run_filter(plugin, info(empty_term), snap)[0]) == set()


def test_match_fields_on_the_node_name_narrow_at_prefilter() -> None:
    snap = snapshot([node("a"), node("b")])
    pinned = {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}
    p = info(pod("ds", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": pinned}}))
    result, status = NodeAffinity().pre_filter(CycleState(), p, snap)
    assert status.success and result is not None and result.node_names == {"b"}
    conflict = {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["a"]},
        {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}
    q = info(pod("x", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": conflict}}))
    _, status = NodeAffinity().pre_filter(CycleState(), q, snap)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and status.message() == "pod affinity terms conflict"


def test_preferred_node_affinity_scores_by_weight() -> None:
    snap = snapshot([node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2", "fast": "yes"}), node("c")])
    preferred = [{"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
                 {"weight": 80, "preference": {"matchExpressions": [{"key": "fast", "operator": "In",
                                                                     "values": ["yes"]}]}}]
    p = info(pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}))
    plugin = NodeAffinity()
    rows = np.array([snap.table.rows[n] for n in ("a", "b", "c")])
    state = CycleState()
    assert plugin.pre_score(state, p, snap, rows).success
    assert list(plugin.score(state, p, snap, rows)) == [20, 100, 0]
    assert plugin.pre_score(state, info(pod("plain")), snap, rows).skip


def test_label_changes_invalidate_cached_masks() -> None:
    snap = snapshot([node("a"), node("b")])
    p = info(pod("p", nodeSelector={"disk": "ssd"}))
    assert passed(snap, run_filter(NodeAffinity(), p, snap)[0]) == set()
    snap.set_node(node("b", labels={"disk": "ssd"}))
    assert passed(snap, run_filter(NodeAffinity(), p, snap)[0]) == {"b"}
