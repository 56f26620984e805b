"""The scheduler against an in-process control plane: binding, FailedScheduling, retry on a new node,
other schedulers' pods, PriorityClasses and preemption, missing claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sched_helpers import eventually, node, pod

from nanokube.api.errors import NotFound
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.scheduler.framework import SKIP, Status
from nanokube.scheduler.scheduler import Scheduler, SchedulerSettings

JSON = dict[str, Any]


class Env:
    def __init__(self, cluster: InProcessCluster) -> None:
        self.client = cluster.client
        self.pods = cluster.resource("", "v1", "pods")
        self.nodes = cluster.resource("", "v1", "nodes")
        self.events = cluster.resource("", "v1", "events")
        self.classes = cluster.resource("scheduling.k8s.io", "v1", "priorityclasses")
        self.scheduler = Scheduler(cluster.client, SchedulerSettings(seed=7, flush_interval=0.05))

    async def node(self, body: JSON) -> None:
        """A Node as a kubelet registers it: the object, then its status."""
        status = body.pop("status")
        await self.client.create(self.nodes, "", body)
        await self.client.patch(self.nodes, "", body["metadata"]["name"], {"status": status}, subresource="status")

    async def nodes_seen(self, count: int) -> None:
        """Wait until the scheduler's snapshot has ``count`` nodes with their allocatable resources."""
        table = self.scheduler.snapshot.table

        async def ready() -> bool:
            return table.count == count and all(i.allocatable for i in table.infos if i is not None)

        await eventually(ready, what=f"{count} nodes in the scheduler's snapshot")

    async def pod(self, body: JSON) -> JSON:
        body = {**body, "metadata": {k: v for k, v in body["metadata"].items() if k not in ("uid", "creationTimestamp")}}
        body.pop("status", None)
        return await self.client.create(self.pods, body["metadata"]["namespace"], body)

    async def get(self, name: str) -> JSON:
        return await self.client.get(self.pods, "default", name)

    async def bound(self, name: str) -> str:
        return str((await self.get(name))["spec"].get("nodeName") or "")

    async def condition(self, name: str) -> JSON | None:
        got = await self.get(name)
        return next((c for c in got["status"].get("conditions") or [] if c["type"] == "PodScheduled"), None)

    async def events_of(self, name: str) -> list[JSON]:
        listed = await self.client.list(self.events, "default")
        return [e for e in listed.items if e["involvedObject"].get("name") == name]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with InProcessCluster() as cluster:
        e = Env(cluster)
        stop = asyncio.Event()
        task = asyncio.create_task(e.scheduler.run(stop=stop))
        await e.scheduler.ready.wait()
        yield e
        stop.set()
        await task


async def test_pods_are_bound_to_feasible_nodes(env: Env) -> None:
    await env.node(node("small", cpu="1"))
    await env.node(node("ssd", labels={"disk": "ssd"}))
    await env.node(node("plain"))
    for i in range(6):
        await env.pod(pod(f"web-{i}", cpu="300m"))
    await env.pod(pod("fast", nodeSelector={"disk": "ssd"}))
    await env.pod(pod("heavy", cpu="2"))
    for i in range(6):
        assert await eventually(lambda i=i: env.bound(f"web-{i}"), what=f"web-{i} bound")  # type: ignore[misc]
    assert await eventually(lambda: env.bound("fast")) == "ssd"
    assert await eventually(lambda: env.bound("heavy")) in ("ssd", "plain")
    scheduled = await env.condition("fast")
    assert scheduled is not None and scheduled["status"] == "True"
    events = await eventually(lambda: env.events_of("fast"))
    assert [(e["type"], e["reason"], e["message"]) for e in events] == [
        ("Normal", "Scheduled", "Successfully assigned default/fast to ssd")]
    assert events[0]["source"]["component"] == "default-scheduler"
    on_small = [i for i in range(6) if await env.bound(f"web-{i}") == "small"]
    assert len(on_small) <= 3  # 1 cpu holds three 300m pods


async def test_an_oversized_pod_waits_then_lands_on_a_big_node_added_later(env: Env) -> None:
    for name in ("a", "b", "c"):
        await env.node(node(name, cpu="2"))
    await env.nodes_seen(3)
    await env.pod(pod("huge", cpu="8"))
    message = ("0/3 nodes are available: 3 Insufficient cpu. no new claims to deallocate, preemption: 0/3 nodes are "
               "available: 3 Preemption is not helpful for scheduling.")
    condition = await eventually(lambda: env.condition("huge"), what="PodScheduled condition")
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", "Unschedulable", message)
    events = await eventually(lambda: env.events_of("huge"))
    assert [(e["type"], e["reason"], e["message"]) for e in events] == [("Warning", "FailedScheduling", message)]
    await env.node(node("big", cpu="16"))
    assert await eventually(lambda: env.bound("huge"), what="huge bound after the big node came") == "big"
    condition = await env.condition("huge")
    assert condition is not None and condition["status"] == "True"


async def test_pods_of_another_scheduler_are_left_alone(env: Env) -> None:
    await env.node(node("a"))
    await env.pod(pod("mine"))
    await env.pod(pod("theirs", schedulerName="other-scheduler"))
    assert await eventually(lambda: env.bound("mine")) == "a"
    await asyncio.sleep(0.1)
    got = await env.get("theirs")
    assert not got["spec"].get("nodeName") and not got["status"].get("conditions", [])


async def test_a_missing_claim_is_reported_and_scheduling_follows_once_it_exists(env: Env) -> None:
    await env.node(node("a"))
    await env.nodes_seen(1)
    await env.pod(pod("app", volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]))
    condition = await eventually(lambda: env.condition("app"))
    assert condition["message"].startswith('0/1 nodes are available: persistentvolumeclaim "data" not found.')


async def test_priority_classes_and_preemption(env: Env) -> None:
    await env.client.create(env.classes, "", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                              "metadata": {"name": "high"}, "value": 1000})
    await env.node(node("only", cpu="1"))
    await env.nodes_seen(1)
    await env.pod(pod("victim", cpu="900m"))
    assert await eventually(lambda: env.bound("victim")) == "only"
    await env.pod(pod("vip", cpu="800m", priorityClassName="high"))

    async def preempted() -> JSON | None:
        try:
            got = await env.get("victim")
        except NotFound:
            return {"gone": True}
        return got if got["metadata"].get("deletionTimestamp") else None

    victim = await eventually(preempted, what="the victim evicted")
    if "gone" not in victim:
        conditions = {c["type"]: c for c in victim["status"].get("conditions") or []}
        assert conditions["DisruptionTarget"]["reason"] == "PreemptionByScheduler"

        async def nominated() -> str:
            return str((await env.get("vip"))["status"].get("nominatedNodeName") or "")

        assert await eventually(nominated, what="vip nominated") == "only"
        await env.client.delete(env.pods, "default", "victim", grace_period_seconds=0)  # what a kubelet confirms
    assert await eventually(lambda: env.bound("vip"), what="vip bound after the preemption") == "only"
    reasons = [e["reason"] for e in await env.events_of("victim")]
    assert "Preempted" in reasons
    vip_events = {e["reason"]: e["message"] for e in await env.events_of("vip")}
    assert vip_events["FailedScheduling"].startswith("0/1 nodes are available: 1 Insufficient cpu.")


async def test_a_pod_waiting_for_affinity_is_retried_when_its_partner_is_scheduled(env: Env) -> None:
    await env.node(node("a", labels={"zone": "z1"}))
    await env.node(node("b", labels={"zone": "z2"}))
    await env.nodes_seen(2)
    near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}
    await env.pod(pod("app", affinity=near))
    condition = await eventually(lambda: env.condition("app"))
    assert condition["message"].startswith("0/2 nodes are available: 2 node(s) didn't match pod affinity rules.")
    await env.pod(pod("db", labels={"app": "db"}, nodeSelector={"zone": "z2"}))
    assert await eventually(lambda: env.bound("db")) == "b"
    assert await eventually(lambda: env.bound("app"), what="app bound near db") == "b"


async def test_spread_constraints_place_pods_evenly(env: Env) -> None:
    for name, zone in (("a", "z1"), ("b", "z2"), ("c", "z3")):
        await env.node(node(name, labels={"zone": zone}))
    await env.nodes_seen(3)
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    for i in range(6):
        await env.pod(pod(f"web-{i}", labels={"app": "web"}, topologySpreadConstraints=spread))
    placed = [await eventually(lambda i=i: env.bound(f"web-{i}")) for i in range(6)]  # type: ignore[misc]
    assert sorted(placed) == ["a", "a", "b", "b", "c", "c"]


class FlakyBinder:
    """Refuses to bind until told otherwise, as an API server that is failing would."""

    name = "FlakyBinder"

    def __init__(self) -> None:
        self.failing = True

    async def bind(self, state: Any, pod: Any, node: str) -> Status:
        return Status.error("etcdserver: request timed out") if self.failing else SKIP


async def test_a_failed_binding_is_taken_back_reported_and_retried(env: Env) -> None:
    flaky = FlakyBinder()
    profile = env.scheduler.framework.profile
    profile.bind = [flaky, *profile.bind]
    await env.node(node("a", cpu="1"))
    await env.nodes_seen(1)
    await env.pod(pod("p", cpu="600m"))
    condition = await eventually(lambda: env.condition("p"), what="the failure reported")
    assert condition["reason"] == "SchedulerError"
    assert condition["message"] == 'running Bind plugin "FlakyBinder": etcdserver: request timed out'
    table = env.scheduler.snapshot.table
    assert table.used[1, table.rows["a"]] == 0  # the assumption was taken back
    flaky.failing = False
    assert await eventually(lambda: env.bound("p"), what="bound after the backoff") == "a"


async def test_priority_comes_from_the_class_or_the_global_default(env: Env) -> None:
    await env.client.create(env.classes, "", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                              "metadata": {"name": "batch"}, "value": 10,
                                              "preemptionPolicy": "Never"})
    await env.client.create(env.classes, "", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                              "metadata": {"name": "everyone"}, "value": 5, "globalDefault": True})
    feeds = env.scheduler.feeds
    await eventually(lambda: _ready(len(feeds.informers["priorityclasses"].cache) >= 2))
    classed = await env.pod(pod("classed", priorityClassName="batch"))
    plain = await env.pod(pod("plain"))
    assert feeds.priority_of(classed) == 10 and feeds.policy_of(classed) == "Never"
    assert feeds.priority_of(plain) == 5  # the API server's priority admission applied the global default
    del plain["spec"]["priority"]
    del plain["spec"]["priorityClassName"]
    assert feeds.priority_of(plain) == 5  # and the scheduler finds it too when the spec does not say
    assert feeds.priority_of({"metadata": {}, "spec": {"priorityClassName": "system-node-critical"}}) == 2000001000


async def _ready(value: bool) -> bool:
    return value
