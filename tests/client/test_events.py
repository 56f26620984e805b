"""EventRecorder against an in-process apiserver: de-duplication, similar-event aggregation, the spam filter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from nanokube.client.eventcache import COMBINED_PREFIX
from nanokube.client.events import EventRecorder
from nanokube.cmd.inprocess import InProcessCluster

JSON = dict[str, Any]
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def cluster() -> AsyncIterator[InProcessCluster]:
    async with InProcessCluster() as c:
        yield c


def owner(name: str = "web", uid: str = "uid-web") -> JSON:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default",
                                                                        "uid": uid}}


async def events_about(cluster: InProcessCluster, name: str) -> list[JSON]:
    listed = await cluster.client.list(cluster.resource("", "v1", "events"), "default")
    return [e for e in listed.items if e["involvedObject"].get("name") == name]


def by_message(events: list[JSON]) -> dict[str, JSON]:
    return {e["message"]: e for e in events}


async def test_repeats_bump_count_and_last_timestamp(cluster: InProcessCluster) -> None:
    clock = Clock()
    rec = EventRecorder(cluster.client, "deployment-controller", clock=clock)
    for _ in range(3):
        await rec.event(owner(), "Normal", "ScalingReplicaSet", "Scaled up to 3")
        clock.now += 10
    await rec.event(owner(), "Warning", "ScalingReplicaSet", "Scaled up to 3")
    events = await events_about(cluster, "web")
    assert sorted((e["type"], e["count"]) for e in events) == [("Normal", 3), ("Warning", 1)]
    normal = next(e for e in events if e["type"] == "Normal")
    assert normal["firstTimestamp"] == "2027-01-15T08:00:00Z" and normal["lastTimestamp"] == "2027-01-15T08:00:20Z"
    assert normal["source"] == {"component": "deployment-controller"}
    assert normal["involvedObject"]["uid"] == "uid-web"


async def test_a_burst_of_similar_events_is_combined(cluster: InProcessCluster) -> None:
    clock = Clock()
    rec = EventRecorder(cluster.client, "replicaset-controller", clock=clock)
    for i in range(30):
        await rec.event(owner(), "Normal", "SuccessfulCreate", f"Created pod: web-{i}")
    events = await events_about(cluster, "web")
    assert len(events) <= 11
    messages = by_message(events)
    assert sorted(m for m in messages if not m.startswith(COMBINED_PREFIX)) == \
        sorted(f"Created pod: web-{i}" for i in range(9))
    combined = [e for m, e in messages.items() if m.startswith(COMBINED_PREFIX)]
    assert len(combined) == 1
    # 21 combined occurrences, but only 25 writes about one object get through a burst: 9 creates + 16 writes of
    # the combined Event, the last 5 are dropped by the spam filter.
    assert combined[0]["count"] == 16 and combined[0]["message"] == COMBINED_PREFIX + "Created pod: web-24"
    assert combined[0]["reason"] == "SuccessfulCreate" and combined[0]["source"]["component"] == \
        "replicaset-controller"

    clock.now += 300  # one token back; the dropped occurrences were still counted
    await rec.event(owner(), "Normal", "SuccessfulCreate", "Created pod: web-30")
    combined_now = [e for e in await events_about(cluster, "web") if e["message"].startswith(COMBINED_PREFIX)]
    assert [(e["count"], e["message"]) for e in combined_now] == [(22, COMBINED_PREFIX + "Created pod: web-30")]


async def test_similar_events_on_other_objects_or_reasons_are_not_combined(cluster: InProcessCluster) -> None:
    rec = EventRecorder(cluster.client, "replicaset-controller", clock=Clock())
    for i in range(9):
        await rec.event(owner(), "Normal", "SuccessfulCreate", f"Created pod: web-{i}")
    await rec.event(owner(), "Normal", "SuccessfulDelete", "Deleted pod: web-0")
    await rec.event(owner("api", "uid-api"), "Normal", "SuccessfulCreate", "Created pod: api-0")
    assert not any(e["message"].startswith(COMBINED_PREFIX) for e in await events_about(cluster, "web"))
    assert len(await events_about(cluster, "web")) == 10
    assert len(await events_about(cluster, "api")) == 1


async def test_a_spammy_object_is_cut_at_25_and_recovers(cluster: InProcessCluster) -> None:
    clock = Clock()
    rec = EventRecorder(cluster.client, "kubelet", host="node-1", clock=clock)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crashy", "namespace": "default", "uid": "u-c"}}
    for i in range(30):  # a different reason each time: nothing to combine, only the spam filter acts
        await rec.event(pod, "Warning", f"Reason{i}", "boom")
    assert len(await events_about(cluster, "crashy")) == 25
    await rec.event(owner(), "Normal", "Other", "another object is not limited")
    assert len(await events_about(cluster, "web")) == 1

    clock.now += 299
    await rec.event(pod, "Warning", "Late", "boom")
    assert len(await events_about(cluster, "crashy")) == 25
    clock.now += 1
    await rec.event(pod, "Warning", "Later", "boom")
    await rec.event(pod, "Warning", "TooSoon", "boom")
    reasons = {e["reason"] for e in await events_about(cluster, "crashy")}
    assert len(reasons) == 26 and "Later" in reasons and "TooSoon" not in reasons

    clock.now += 600
    await rec.event(pod, "Warning", "Reason0", "boom")  # a repeat: patched with every occurrence counted
    await rec.event(pod, "Warning", "Fresh", "boom")
    got = {e["reason"]: e for e in await events_about(cluster, "crashy")}
    assert got["Reason0"]["count"] == 2 and "Fresh" in got and len(got) == 27


async def test_a_deleted_event_is_created_again_with_its_count(cluster: InProcessCluster) -> None:
    rec = EventRecorder(cluster.client, "node-controller", clock=Clock())
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n1"}}
    await rec.event(node, "Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady")
    [first] = await events_about(cluster, "n1")
    assert first["metadata"]["namespace"] == "default"
    await cluster.client.delete(cluster.resource("", "v1", "events"), "default", first["metadata"]["name"])
    await rec.event(node, "Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady")
    [again] = await events_about(cluster, "n1")
    assert again["count"] == 2 and again["firstTimestamp"] == first["firstTimestamp"]
