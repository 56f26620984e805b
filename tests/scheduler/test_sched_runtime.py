"""The framework runner: selection, kube's nodes-to-score rotation, nominated nodes, PreFilter narrowing, Permit."""

from __future__ import annotations

import asyncio

from sched_helpers import framework, info, node, pod, snapshot

from nanokube.scheduler.framework import Code, CycleState, Status, fit_error_message
from nanokube.scheduler.runtime import Framework, Profile, nodes_to_find


def test_nodes_to_find_follows_kube() -> None:
    assert nodes_to_find(0, 50) == 50
    assert nodes_to_find(0, 100) == 100
    assert nodes_to_find(0, 1000) == 420
    assert nodes_to_find(0, 5000) == 500
    assert nodes_to_find(0, 20000) == 1000  # floor of 5%
    assert nodes_to_find(30, 1000) == 300


def test_the_least_allocated_feasible_node_wins() -> None:
    snap = snapshot([node("busy"), node("idle"), node("tiny", cpu="100m")], [(pod("x", cpu="3"), "busy")])
    result = framework().schedule(CycleState(), info(pod("p", cpu="500m")), snap)
    assert result.node == "idle" and result.feasible == 2


def test_scoring_looks_at_a_rotating_window_of_feasible_nodes() -> None:
    snap = snapshot([node(f"n{i:03}") for i in range(300)])
    fw = framework()
    first = fw.schedule(CycleState(), info(pod("a")), snap)
    assert first.evaluated == nodes_to_find(0, 300) == 144 and first.feasible == 300
    assert fw.next_start == 144
    fw.schedule(CycleState(), info(pod("b")), snap)
    assert fw.next_start == 288
    fw.schedule(CycleState(), info(pod("c")), snap)
    assert fw.next_start == 132  # 288..299, then wrapped round to 0..131


def test_a_nominated_node_that_fits_is_taken_at_once() -> None:
    snap = snapshot([node("busy"), node("idle")], [(pod("x", cpu="3"), "busy")])
    nominated = pod("p", cpu="500m")
    nominated["status"]["nominatedNodeName"] = "busy"
    assert framework().schedule(CycleState(), info(nominated), snap).node == "busy"


def test_nodes_outside_a_prefilter_result_are_reported_as_such() -> None:
    snap = snapshot([node("a", cpu="1"), node("b"), node("c")])
    pinned = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}
    p = info(pod("ds", cpu="2", affinity={"nodeAffinity": pinned}))
    result = framework().schedule(CycleState(), p, snap)
    assert result.diagnosis is not None
    assert fit_error_message(3, result.diagnosis) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity].")
    assert list(result.diagnosis.unresolvable_rows()) == [True, True, True]


def test_prefilter_rejection_is_the_whole_message() -> None:
    p = info(pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "gone"}}]))
    result = framework().schedule(CycleState(), p, snapshot([node("a"), node("b")]))
    assert result.diagnosis is not None
    assert fit_error_message(2, result.diagnosis) == '0/2 nodes are available: persistentvolumeclaim "gone" not found.'


class Gate:
    name = "Gate"

    def permit(self, state: CycleState, pod: object, node: str) -> tuple[Status, float]:
        return Status(Code.WAIT), 5.0


async def test_permit_wait_until_allowed() -> None:
    fw = Framework(Profile(permit=[Gate()]))
    p = info(pod("p"))
    status, waiting = fw.permit(CycleState(), p, "a")
    assert status.code == Code.WAIT and waiting is not None
    task = asyncio.create_task(fw.wait_on_permit(waiting))
    await asyncio.sleep(0)
    fw.waiting[p.uid].allow("Gate")
    assert (await task).success
    assert p.uid not in fw.waiting


async def test_permit_times_out() -> None:
    fw = Framework(Profile(permit=[Gate()]))
    _status, waiting = fw.permit(CycleState(), info(pod("p")), "a")
    assert waiting is not None
    waiting.timeout = 0.01
    result = await fw.wait_on_permit(waiting)
    assert result.code == Code.UNSCHEDULABLE and "timeout" in result.message()
