"""The status manager: patches of what changed, kept transition times, coalesced writes, confirmed deletion."""

from __future__ import annotations

import asyncio
from typing import Any

from kubelet_helpers import ValidatingClient, eventually, pod, validate

from nanokube.api.errors import NotFound
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.status import StatusManager, stamp_status, status_patch


def cond(type_: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, **extra}


def test_stamp_keeps_transition_times_of_unchanged_conditions_and_start_time() -> None:
    base = {"startTime": "T0", "conditions": [cond("Ready", "False", lastTransitionTime="T1"),
                                              cond("Initialized", "True", lastTransitionTime="T2")]}
    new = {"phase": "Running", "conditions": [cond("Ready", "True"), cond("Initialized", "True")]}
    stamped = stamp_status(new, base, "NOW")
    assert stamped["startTime"] == "T0"
    assert [c["lastTransitionTime"] for c in stamped["conditions"]] == ["NOW", "T2"]
    assert "lastTransitionTime" not in new["conditions"][0]  # the input is not changed
    assert stamp_status(new, {}, "NOW")["startTime"] == "NOW"


def test_status_patch_sends_only_changes_and_nulls_dropped_fields() -> None:
    old = {"phase": "Pending", "qosClass": "BestEffort", "reason": "X",
           "conditions": [cond("Ready", "False", reason="ContainersNotReady", message="m", lastTransitionTime="T1"),
                          cond("PodScheduled", "True", lastTransitionTime="T0")]}
    new = {"phase": "Running", "qosClass": "BestEffort",
           "conditions": [cond("Ready", "True", lastTransitionTime="T2"),
                          cond("PodScheduled", "True", lastTransitionTime="T0")]}
    assert status_patch(old, new) == {
        "phase": "Running", "reason": None,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "T2", "reason": None,
                        "message": None}]}
    assert status_patch(new, new) == {}


def test_status_patch_leaves_conditions_it_does_not_own_alone() -> None:
    """A readiness gate's condition in the kubelet's (older) copy is never written back over the API's."""
    api = {"conditions": [cond("example.com/gate", "False"), cond("Ready", "False")]}
    stale = {"conditions": [cond("example.com/gate", "True"), cond("Ready", "True")]}
    assert status_patch(api, stale) == {"conditions": [{"type": "Ready", "status": "True"}]}


async def test_writes_coalesce_keep_transition_times_and_validate() -> None:
    async with InProcessCluster() as cluster:
        client = ValidatingClient(cluster.client)
        pods = cluster.resource("", "v1", "pods")
        created = await client.create(pods, "default", pod("p", "n1"))
        manager = StatusManager(client)
        pending = {"phase": "Pending", "conditions": [cond("Ready", "False", reason="ContainersNotReady")]}
        running = {"phase": "Running", "podIP": "10.42.0.2", "conditions": [cond("Ready", "True")]}
        manager.set_status(created, pending)
        manager.set_status(created, running)  # replaces the unsent one
        await manager.flush()
        assert manager.writes == 1
        stored = await client.get(pods, "default", "p")
        validate(stored)
        assert stored["status"]["phase"] == "Running" and stored["status"]["podIP"] == "10.42.0.2"
        ready = next(c for c in stored["status"]["conditions"] if c["type"] == "Ready")
        assert "reason" not in ready
        manager.set_status(stored, running)  # nothing new: nothing written
        await manager.flush()
        assert manager.writes == 1
        manager.set_status(stored, {**running, "phase": "Succeeded"})
        await manager.flush()
        again = await client.get(pods, "default", "p")
        kept = next(c for c in again["status"]["conditions"] if c["type"] == "Ready")
        assert kept["lastTransitionTime"] == ready["lastTransitionTime"]
        assert again["status"]["startTime"] == stored["status"]["startTime"]


async def test_someone_elses_change_is_written_back() -> None:
    async with InProcessCluster() as cluster:
        pods = cluster.resource("", "v1", "pods")
        created = await cluster.client.create(pods, "default", pod("p", "n1"))
        manager = StatusManager(cluster.client)
        running = {"phase": "Running", "conditions": [cond("Ready", "True")]}
        manager.set_status(created, running)
        await manager.flush()
        mine = await cluster.client.get(pods, "default", "p")
        theirs = await cluster.client.patch(pods, "default", "p", {"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}}, patch_type="strategic", subresource="status")
        manager.observe(theirs)
        manager.set_status(mine, running)
        await manager.flush()
        back = await cluster.client.get(pods, "default", "p")
        assert next(c for c in back["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"


async def test_delete_after_the_terminal_status_lands() -> None:
    async with InProcessCluster() as cluster:
        pods = cluster.resource("", "v1", "pods")
        await cluster.client.create(pods, "default", pod("p", "n1"))
        deleting = await cluster.client.delete(pods, "default", "p")
        assert deleting["metadata"]["deletionTimestamp"]
        manager = StatusManager(cluster.client)
        manager.set_status(deleting, {"phase": "Succeeded", "conditions": [cond("Ready", "False")]}, delete=True)
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(stop=stop))

        async def gone() -> bool:
            try:
                await cluster.client.get(pods, "default", "p")
            except NotFound:
                return True
            return False

        await eventually(gone, what="the pod deleted")
        assert manager.writes == 1 and manager.pending() == 0
        stop.set()
        await task


async def test_a_successor_with_the_same_name_is_not_written() -> None:
    async with InProcessCluster() as cluster:
        pods = cluster.resource("", "v1", "pods")
        old = await cluster.client.create(pods, "default", pod("p", "n1"))
        await cluster.client.delete(pods, "default", "p", grace_period_seconds=0)
        await cluster.client.create(pods, "default", pod("p", "n2"))
        current: dict[str, Any] = {}

        def lookup(namespace: str, name: str) -> dict[str, Any] | None:
            return current.get(name)

        current["p"] = await cluster.client.get(pods, "default", "p")
        manager = StatusManager(cluster.client, lookup=lookup)
        manager.set_status(old, {"phase": "Running", "conditions": [cond("Ready", "True")]})
        await manager.flush()
        assert manager.writes == 0
        assert (await cluster.client.get(pods, "default", "p"))["status"]["phase"] == "Pending"


async def test_a_change_seen_by_the_informer_alone_is_reverted() -> None:
    async with InProcessCluster() as cluster:
        pods = cluster.resource("", "v1", "pods")
        created = await cluster.client.create(pods, "default", pod("p", "n1"))
        manager = StatusManager(cluster.client)
        manager.set_status(created, {"phase": "Running", "conditions": [cond("Ready", "True")]})
        await manager.flush()
        writes = manager.writes
        echo = await cluster.client.get(pods, "default", "p")
        manager.observe(echo)  # our own write coming back: nothing to do
        assert manager.pending() == 0
        theirs = await cluster.client.patch(pods, "default", "p", {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "NodeNotReady"}]}}, patch_type="strategic",
            subresource="status")
        manager.observe(theirs)
        assert manager.pending() == 1
        await manager.flush()
        assert manager.writes == writes + 1
        back = await cluster.client.get(pods, "default", "p")
        ready = next(c for c in back["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True" and "reason" not in ready
