"""DefaultPreemption: minimal victims, node choice, budgets, eligibility and kube's messages."""

from __future__ import annotations

from typing import Any

from sched_helpers import framework, info, node, pod, snapshot

from nanokube.scheduler.framework import Code, CycleState, fit_error_message
from nanokube.scheduler.handle import Handle
from nanokube.scheduler.plugins.preemption import DefaultPreemption
from nanokube.scheduler.table import CPU


def attempt(snap: Any, incoming: dict[str, Any], handle: Handle | None = None) -> tuple[Any, Any, Any]:
    fw = framework(handle=handle)
    state = CycleState()
    p = info(incoming)
    result = fw.schedule(state, p, snap)
    assert result.diagnosis is not None, "the pod should not fit before preemption"
    preemption = DefaultPreemption(lambda: fw, handle)
    found, status = preemption.post_filter(state, p, snap, result.diagnosis)
    return found, status, preemption


def test_evicts_as_few_lower_priority_pods_as_needed() -> None:
    low1, low2 = pod("low1", cpu="2", priority=0), pod("low2", cpu="1", priority=0)
    high = pod("high", cpu="3", priority=1000)
    snap = snapshot([node("a"), node("b")], [(low1, "a"), (low2, "a"), (high, "b")])
    before = snap.table.used.copy()
    fw = framework()
    state = CycleState()
    p = info(pod("p", cpu="2", priority=100))
    result = fw.schedule(state, p, snap)
    assert result.diagnosis is not None
    chosen: list[Any] = []
    preemption = DefaultPreemption(lambda: fw, submit=lambda coro: (chosen.append(coro), coro.close()))
    found, status = preemption.post_filter(state, p, snap, result.diagnosis)
    assert status.success and found is not None and found.nominated_node == "a"
    # low1 (2 cpu) can stay: taking low2 (1 cpu) away leaves exactly 2 cpu
    victims = preemption._victims_on(p, snap, snap.table.rows["a"])[0]
    assert victims is not None and [v.name for v in victims.victims] == ["low2"]
    assert (snap.table.used == before).all()  # every what-if was put back
    assert len(chosen) == 1


def test_no_candidates_gives_kubes_preemption_message() -> None:
    snap = snapshot([node("a"), node("b", labels={"x": "y"})], [(pod("high", cpu="3", priority=1000), "a")])
    found, status, _ = attempt(snap, pod("p", cpu="2", priority=100, nodeSelector={"kubernetes.io/hostname": "a"}))
    assert status.code == Code.UNSCHEDULABLE
    assert status.message() == ("preemption: 0/2 nodes are available: 1 No preemption victims found for incoming "
                                "pod, 1 Preemption is not helpful for scheduling.")
    assert found is not None and found.nominated_node == ""


def test_victims_that_would_still_not_make_room_report_the_filter_reason() -> None:
    snap = snapshot([node("a")], [(pod("low", cpu="1", priority=0), "a"), (pod("high", cpu="3", priority=500), "a")])
    _, status, _ = attempt(snap, pod("p", cpu="2", priority=100))
    assert status.message() == "preemption: 0/1 nodes are available: 1 Insufficient cpu."


def test_pods_that_never_preempt_say_so() -> None:
    snap = snapshot([node("a")], [(pod("low", cpu="4", priority=0), "a")])
    _, status, _ = attempt(snap, pod("p", cpu="2", priority=100, preemptionPolicy="Never"))
    assert status.message() == "preemption: not eligible due to preemptionPolicy=Never."


def test_a_node_whose_victim_is_protected_by_a_budget_is_avoided() -> None:
    guarded = pod("guarded", cpu="3", priority=0, labels={"app": "db"})
    plain = pod("plain", cpu="3", priority=0, labels={"app": "batch"})
    snap = snapshot([node("a"), node("b")], [(guarded, "a"), (plain, "b")])
    pdb = {"metadata": {"name": "db", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0}}
    handle = Handle(caches={"poddisruptionbudgets": {"default/db": pdb}})
    found, status, _ = attempt(snap, pod("p", cpu="2", priority=100), handle)
    assert status.success and found is not None and found.nominated_node == "b"


def test_lower_priority_victims_are_preferred() -> None:
    snap = snapshot([node("a"), node("b")], [(pod("mid", cpu="3", priority=50), "a"),
                                             (pod("low", cpu="3", priority=10), "b")])
    found, status, _ = attempt(snap, pod("p", cpu="2", priority=100))
    assert status.success and found is not None and found.nominated_node == "b"


def test_the_fit_error_carries_the_preemption_message() -> None:
    snap = snapshot([node("a", cpu="1"), node("b", labels={"x": "y"}), node("c", labels={"x": "y"})])
    fw = framework(claims_note=True)
    state = CycleState()
    p = info(pod("p", cpu="2", nodeSelector={"kubernetes.io/hostname": "a"}))
    result = fw.schedule(state, p, snap)
    assert result.diagnosis is not None
    _, status = fw.post_filter(state, p, snap, result.diagnosis)
    result.diagnosis.post_filter_msg = status.message()
    assert fit_error_message(3, result.diagnosis) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. "
        "no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
        "scheduling.")
    assert snap.table.used[CPU].sum() == 0
