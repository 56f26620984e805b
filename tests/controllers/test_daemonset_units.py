"""The DaemonSet controller's pure parts: node eligibility, tolerations, node pins, per-node plans, rolling
update steps, status counts, hashes and back-off."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from nanokube.controllers.daemonset import (
    Backoff,
    Expectations,
    compute_hash,
    daemon_pod_spec,
    default_tolerations,
    new_pod,
    node_plan,
    node_should_run,
    pin_to_node,
    rolling_update,
    target_node,
)
from nanokube.controllers.daemonset.placement import add_daemon_tolerations
from nanokube.controllers.daemonset.status import count
from nanokube.controllers.daemonset.update import limits, scaled_value
from nanokube.util.timeutil import now, rfc3339

JSON = dict[str, Any]


def _ds(pod_spec: JSON | None = None, **spec: Any) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "u-1", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": pod_spec or {"containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


def _node(name: str, labels: dict[str, str] | None = None, taints: list[JSON] | None = None) -> JSON:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


# -- placement -----------------------------------------------------------------------------------------------
def test_default_tolerations_cover_node_problems_and_network_only_for_host_network() -> None:
    keys = [(t["key"].rsplit("/", 1)[1], t["effect"]) for t in default_tolerations(False)]
    assert keys == [("not-ready", "NoExecute"), ("unreachable", "NoExecute"), ("disk-pressure", "NoSchedule"),
                    ("memory-pressure", "NoSchedule"), ("pid-pressure", "NoSchedule"),
                    ("unschedulable", "NoSchedule")]
    assert all(t["operator"] == "Exists" and "tolerationSeconds" not in t for t in default_tolerations(True))
    assert default_tolerations(True)[-1] == {"key": "node.kubernetes.io/network-unavailable",
                                             "operator": "Exists", "effect": "NoSchedule"}


def test_daemon_tolerations_replace_identical_ones_and_keep_the_rest() -> None:
    spec: JSON = {"tolerations": [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        {"key": "gpu", "operator": "Exists"}]}
    add_daemon_tolerations(spec)
    assert spec["tolerations"][0] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute"}
    assert spec["tolerations"][1] == {"key": "gpu", "operator": "Exists"}
    assert len(spec["tolerations"]) == 7


@pytest.mark.parametrize(("node", "pod_spec", "verdict"), [
    (_node("a"), None, (True, True)),
    (_node("a", {"disk": "ssd"}), {"nodeSelector": {"disk": "ssd"}}, (True, True)),
    (_node("a", {"disk": "hdd"}), {"nodeSelector": {"disk": "ssd"}}, (False, False)),
    (_node("a"), {"nodeName": "b"}, (False, False)),
    (_node("a", {"zone": "z1"}), {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}]},
                              {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}}},
     (True, True)),
    (_node("a", {"cores": "4"}), {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}]}}}},
     (False, False)),
    (_node("a", taints=[{"key": "k", "effect": "NoSchedule"}]), None, (False, True)),
    (_node("a", taints=[{"key": "k", "effect": "NoExecute"}]), None, (False, False)),
    (_node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), None, (True, True)),
    (_node("a", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
     {"tolerations": [{"key": "k", "operator": "Equal", "value": "v"}]}, (True, True)),
    (_node("a", taints=[{"key": "k", "value": "w", "effect": "NoExecute"}]),
     {"tolerations": [{"key": "k", "operator": "Equal", "value": "v"}]}, (False, False)),
    (_node("a", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                        {"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule"}]), None, (True, True)),
    (_node("a", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]), None,
     (False, True)),
    (_node("a", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
     {"hostNetwork": True}, (True, True)),
])
def test_node_should_run(node: JSON, pod_spec: JSON | None, verdict: tuple[bool, bool]) -> None:
    spec = {"containers": [{"name": "c", "image": "i"}], **(pod_spec or {})}
    assert node_should_run(node, _ds(spec)) == verdict


def test_pin_replaces_required_terms_and_keeps_the_rest_of_the_affinity() -> None:
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["z1"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]},
        "podAntiAffinity": {"x": 1}}
    pinned = pin_to_node(affinity, "n7")
    assert pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 1, "preference": {}}]
    assert pinned["podAntiAffinity"] == {"x": 1}
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0] \
        .get("matchExpressions")  # the template is not changed
    assert target_node({"spec": {"affinity": pinned}}) == "n7"
    assert target_node({"spec": {"affinity": pinned, "nodeName": "bound"}}) == "bound"
    assert target_node({"spec": {}}) is None


def test_new_pod_carries_revision_labels_pin_and_tolerations() -> None:
    ds = _ds()
    ds["spec"]["template"]["metadata"]["annotations"] = {"a": "b"}
    pod = new_pod(ds, "n1", "abc", 3)
    assert pod["metadata"]["generateName"] == "agent-"
    assert pod["metadata"]["labels"] == {"app": "agent", "pod-template-generation": "3",
                                         "controller-revision-hash": "abc"}
    assert pod["metadata"]["annotations"] == {"a": "b"}
    assert target_node(pod) == "n1" and "nodeName" not in pod["spec"]
    assert pod["spec"]["tolerations"] == daemon_pod_spec(ds)["tolerations"]
    assert "tolerations" not in ds["spec"]["template"]["spec"]


# -- per-node plans ------------------------------------------------------------------------------------------
def _pod(name: str, *, hash_: str = "new", phase: str = "Running", ready: bool = True, age: int = 0,
         deleting: bool = False, ready_for: int = 3600) -> JSON:
    created = rfc3339(now() - timedelta(seconds=1000 - age))
    meta: JSON = {"name": name, "creationTimestamp": created, "labels": {"controller-revision-hash": hash_}}
    if deleting:
        meta["deletionTimestamp"] = rfc3339()
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": rfc3339(now() - timedelta(seconds=ready_for))}]
    return {"metadata": meta, "spec": {"nodeName": "n"}, "status": {"phase": phase, "conditions": conditions}}


def _plan(pods: list[JSON] | None, *, run: bool = True, cont: bool = True, surge: bool = False,
          backoff: float | None = None) -> Any:
    return node_plan(run, cont, pods, surge, "new", None, 0, now(), lambda: backoff)


def test_node_plan_creates_prunes_and_evicts() -> None:
    assert _plan(None).create and not _plan(None, run=False).create
    assert _plan([_pod("p")]).delete == []
    older, younger = _pod("old", age=0), _pod("young", age=10)
    assert [p["metadata"]["name"] for p in _plan([younger, older]).delete] == ["young"]
    assert [p["metadata"]["name"] for p in _plan([older, younger], run=False, cont=False).delete] == \
        ["old", "young"]
    assert _plan([_pod("p")], run=False, cont=True).delete == []  # a NoSchedule taint leaves it running
    # A terminating pod is waited for, not replaced alongside (without surge).
    plan = _plan([_pod("going", deleting=True)])
    assert not plan.create and plan.delete == []
    assert _plan([_pod("going", deleting=True)], surge=True).create


def test_node_plan_deletes_failed_pods_only_when_back_off_allows() -> None:
    failed = _pod("f", phase="Failed", ready=False)
    plan = _plan([failed])
    assert plan.delete == [failed] and plan.failed == [failed]
    held = _plan([failed], backoff=4.0)
    assert held.delete == [] and held.retry_after == 4.0
    done = _pod("s", phase="Succeeded", ready=False)
    assert _plan([done]).succeeded == [done]


def test_node_plan_while_surging_keeps_one_old_and_one_new() -> None:
    old, new = _pod("old", hash_="old", age=0), _pod("new", age=5, ready=False)
    assert _plan([old, new], surge=True).delete == []  # the new one is not available yet
    ready_new = _pod("new", age=5)
    assert _plan([old, ready_new], surge=True).delete == [old]
    broken_old = _pod("old", hash_="old", ready=False)
    assert _plan([broken_old, new], surge=True).delete == [broken_old]
    extra = _pod("new2", age=9, ready=False)
    assert _plan([old, new, extra], surge=True).delete == [extra]


# -- rolling update steps ------------------------------------------------------------------------------------
def _rolling(max_unavailable: Any = 1, max_surge: Any = 0, **spec: Any) -> JSON:
    return _ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": max_unavailable, "maxSurge": max_surge}}, **spec)


def test_limits_round_percentages_up_and_never_allow_nothing() -> None:
    assert scaled_value("25%", 10, True) == 3 and scaled_value("25%", 10, False) == 2 and scaled_value(2, 9, True) == 2
    assert limits(_rolling("10%", 0), 5) == (0, 1)
    assert limits(_rolling(0, "50%"), 5) == (3, 0)
    assert limits(_rolling(0, 0), 5) == (0, 1)
    assert limits(_ds(updateStrategy={"type": "OnDelete"}), 5) == (0, 1)


def test_rolling_update_without_surge() -> None:
    nodes = {f"n{i}": [_pod(f"p{i}", hash_="old")] for i in range(5)}
    plan = rolling_update(_rolling(2), nodes, lambda n: True, "new", None, now())
    assert [p["metadata"]["name"] for p in plan.delete] == ["p0", "p1"] and plan.create == []
    # Unavailable old pods go regardless; an unavailable new pod uses up the budget.
    nodes["n3"] = [_pod("p3", hash_="old", ready=False)]
    nodes["n0"] = [_pod("p0", hash_="new", ready=False)]
    plan = rolling_update(_rolling(2), nodes, lambda n: True, "new", None, now())
    assert [p["metadata"]["name"] for p in plan.delete] == ["p3"]
    plan = rolling_update(_rolling(3), nodes, lambda n: True, "new", None, now())
    assert sorted(p["metadata"]["name"] for p in plan.delete) == ["p1", "p3"]
    nodes["n5"] = []  # a node still waiting for its pod counts as unavailable
    plan = rolling_update(_rolling(3), nodes, lambda n: True, "new", None, now())
    assert [p["metadata"]["name"] for p in plan.delete] == ["p3"]


def test_rolling_update_respects_min_ready_seconds() -> None:
    nodes = {"n0": [_pod("fresh", ready_for=2)], "n1": [_pod("p1", hash_="old")]}
    ds = _rolling(1, minReadySeconds=10)
    assert rolling_update(ds, nodes, lambda n: True, "new", None, now()).delete == []
    nodes["n0"] = [_pod("settled", ready_for=20)]
    assert [p["metadata"]["name"] for p in rolling_update(ds, nodes, lambda n: True, "new", None, now()).delete] \
        == ["p1"]


def test_rolling_update_with_surge() -> None:
    nodes = {f"n{i}": [_pod(f"p{i}", hash_="old")] for i in range(4)}
    plan = rolling_update(_rolling(0, 2), nodes, lambda n: True, "new", None, now())
    assert plan.create == ["n0", "n1"] and plan.delete == []
    nodes["n0"].append(_pod("q0", ready=False))
    nodes["n1"].append(_pod("q1"))
    nodes["n3"] = [_pod("p3", hash_="old", ready=False)]
    plan = rolling_update(_rolling(0, 2), nodes, lambda n: True, "new", None, now())
    # n1's new pod took over; n3's old pod is down so its replacement starts at once; n0 is still surging,
    # leaving room for one more surge (n2).
    assert [p["metadata"]["name"] for p in plan.delete] == ["p1"]
    assert plan.create == ["n3", "n2"]


def test_surge_leaves_nodes_it_should_not_run_on_only_while_enough_are_available() -> None:
    nodes = {"n0": [_pod("p0", hash_="old")], "n1": []}
    should = {"n0": False, "n1": True}
    plan = rolling_update(_rolling(0, 1), nodes, should.__getitem__, "new", None, now())
    assert plan.delete == []  # the only available pod stays until the new node has one
    nodes["n1"] = [_pod("q1")]
    plan = rolling_update(_rolling(0, 1), nodes, should.__getitem__, "new", None, now())
    assert [p["metadata"]["name"] for p in plan.delete] == ["p0"]


# -- status --------------------------------------------------------------------------------------------------
def test_status_counts_nodes_by_their_oldest_pod() -> None:
    ds = _ds(minReadySeconds=60)
    node_pods = {"a": [_pod("a-new", age=50, ready=False), _pod("a-old", hash_="old", age=0)],
                 "b": [_pod("b", ready_for=5)], "x": [_pod("x")]}
    should = {"a": True, "b": True, "c": True, "x": False}
    counts = count(ds, ["a", "b", "c", "x"], node_pods, should.__getitem__, "new", None, now())
    assert counts == {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1,
                      "numberReady": 2, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 2}


# -- hashes, back-off, expectations --------------------------------------------------------------------------
def test_hash_follows_the_template_and_the_collision_count() -> None:
    t1 = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "1"}]}}
    t2 = {"spec": {"containers": [{"image": "1", "name": "c"}]}, "metadata": {"labels": {"a": "b"}}}
    assert compute_hash(t1, None) == compute_hash(t2, None)
    assert compute_hash(t1, None) != compute_hash(t1, 1) != compute_hash(t1, 2)
    assert compute_hash(t1, None) != compute_hash({"spec": {"containers": [{"name": "c", "image": "2"}]}}, None)
    assert set(compute_hash(t1, None)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_backoff_doubles_while_failures_keep_coming() -> None:
    clock = [100.0]
    backoff = Backoff(1.0, 8.0, clock=lambda: clock[0])
    assert backoff.wait_left("k") is None
    backoff.use("k")
    assert backoff.wait_left("k") == 1.0
    clock[0] += 1.5
    assert backoff.wait_left("k") is None
    backoff.use("k")
    assert backoff.wait_left("k") == 2.0
    for _ in range(5):
        clock[0] += 10  # within twice the cap of the last use: the delay keeps doubling
        backoff.use("k")
    assert backoff.wait_left("k") == 8.0
    clock[0] += 1000  # long quiet: it starts again from the beginning
    backoff.use("k")
    assert backoff.wait_left("k") == 1.0


def test_expectations_wait_for_creations_and_each_deletion() -> None:
    exp = Expectations()
    exp.expect("k", 2, ["ns/a"])
    exp.creation_observed("k")
    exp.creation_observed("k")
    assert not exp.satisfied("k")
    exp.deletion_observed("k", "ns/b")
    assert not exp.satisfied("k")
    exp.deletion_observed("k", "ns/a")
    assert exp.satisfied("k")
