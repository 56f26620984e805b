"""The scheduling queue: priority order, backoff, unschedulable pods moved only by events that can help them."""

from __future__ import annotations

import asyncio

from sched_helpers import info, node, pod

from nanokube.scheduler import queue as q
from nanokube.scheduler.queue import SchedulingQueue
from nanokube.scheduler.scheduler import fits_new_node


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, **kwargs: object) -> SchedulingQueue:
    return SchedulingQueue(clock=clock or Clock(), **kwargs)  # type: ignore[arg-type]


async def test_higher_priority_first_then_first_come() -> None:
    queue = make()
    for name, priority in (("low", 0), ("high", 10), ("low2", 0), ("mid", 5)):
        queue.add(info(pod(name, priority=priority)))
    order = [(await queue.pop()) for _ in range(4)]
    assert [qp.info.name for qp in order if qp] == ["high", "mid", "low", "low2"]


def test_backoff_doubles_from_one_second_to_ten() -> None:
    queue = make()
    assert [queue.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_pods_wait_for_an_event_their_plugins_care_about() -> None:
    clock = Clock()
    queue = make(clock, pop_from_backoff=False)
    queue.add(info(pod("p")))
    qp = await queue.pop()
    assert qp is not None
    queue.requeue(qp, queue.scheduling_cycle, {"NodeAffinity"})
    assert queue.where[qp.uid] == "unschedulable"
    assert queue.move(q.POD_DELETE) == 0  # a pod going away does not change node labels
    assert queue.move(q.NODE_LABELS) == 1
    assert queue.where[qp.uid] == "backoff"  # its 1 s backoff has not run out
    clock.now += 1.0
    queue.flush()
    assert queue.where[qp.uid] == "active"
    again = await queue.pop()
    assert again is qp and qp.attempts == 2


async def test_a_moved_pod_past_its_backoff_goes_straight_to_active() -> None:
    clock = Clock()
    queue = make(clock)
    queue.add(info(pod("p")))
    qp = await queue.pop()
    assert qp is not None
    queue.requeue(qp, queue.scheduling_cycle, {"NodeResourcesFit"})
    clock.now += 5
    queue.move(q.POD_DELETE)
    assert queue.where[qp.uid] == "active"


async def test_errors_back_off_and_are_not_popped_early() -> None:
    clock = Clock()
    queue = make(clock, pop_from_backoff=True)
    queue.add(info(pod("p")))
    qp = await queue.pop()
    assert qp is not None
    queue.requeue(qp, queue.scheduling_cycle, set(), error=True)
    assert queue.where[qp.uid] == "backoff"
    try:
        await asyncio.wait_for(queue.pop(), 0.05)
        raise AssertionError("an errored pod was popped before its backoff ran out")
    except TimeoutError:
        pass
    clock.now += 1
    queue.flush()
    assert (await queue.pop()) is qp


async def test_rejected_pods_backing_off_may_be_popped_early_when_idle() -> None:
    queue = make(pop_from_backoff=True)
    queue.add(info(pod("p")))
    qp = await queue.pop()
    assert qp is not None
    queue.move(q.NODE_ADD)  # a change during the cycle: the pod goes to backoff, not unschedulable
    queue.requeue(qp, queue.scheduling_cycle, {"NodeResourcesFit"})
    assert queue.where[qp.uid] == "backoff"
    assert (await asyncio.wait_for(queue.pop(), 1)) is qp


async def test_pods_unschedulable_for_long_are_retried_anyway() -> None:
    clock = Clock()
    queue = make(clock, max_unschedulable=300.0)
    queue.add(info(pod("p")))
    qp = await queue.pop()
    assert qp is not None
    queue.requeue(qp, queue.scheduling_cycle, {"NodeAffinity"})
    clock.now += 299
    queue.flush()
    assert queue.where[qp.uid] == "unschedulable"
    clock.now += 1
    queue.flush()
    assert queue.where[qp.uid] == "active"


async def test_spec_updates_move_an_unschedulable_pod_status_updates_do_not() -> None:
    clock = Clock()
    queue = make(clock)
    body = pod("p", nodeSelector={"disk": "ssd"})
    queue.add(info(body))
    qp = await queue.pop()
    assert qp is not None
    queue.requeue(qp, queue.scheduling_cycle, {"NodeAffinity"})
    status_only = {**body, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled"}]}}
    queue.update(info(status_only))
    assert queue.where[qp.uid] == "unschedulable"
    changed = {**body, "spec": {**body["spec"], "nodeSelector": {}}}
    clock.now += 10
    queue.update(info(changed))
    assert queue.where[qp.uid] == "active"


async def test_gated_pods_wait_until_their_gates_are_removed() -> None:
    queue = make()
    gated = pod("g", schedulingGates=[{"name": "example.com/wait"}])
    queue.add(info(gated))
    assert queue.where[info(gated).uid] == "gated"
    open_ = {**gated, "spec": {k: v for k, v in gated["spec"].items() if k != "schedulingGates"}}
    queue.update(info(open_))
    popped = await queue.pop()
    assert popped is not None and popped.info.name == "g"


async def test_deleted_pods_leave_every_set() -> None:
    queue = make()
    a, b = info(pod("a")), info(pod("b"))
    queue.add(a)
    queue.add(b)
    queue.delete(a.uid)
    popped = await queue.pop()
    assert popped is not None and popped.info.name == "b"
    queue.close()
    assert await queue.pop() is None


async def test_node_resources_hint_ignores_nodes_too_small_for_the_pod() -> None:
    queue = make(hints={"NodeResourcesFit": fits_new_node})
    big = info(pod("big", cpu="16"))
    queue.add(big)
    qp = await queue.pop()
    assert qp is not None
    queue.requeue(qp, queue.scheduling_cycle, {"NodeResourcesFit"})
    assert queue.move(q.NODE_ADD, node("small", cpu="4")) == 0
    assert queue.move(q.NODE_ADD, node("large", cpu="32")) == 1
