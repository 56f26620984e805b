"""PodDisruptionBudget status from the disruption controller, and the eviction API obeying it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from harness import eventually

from nanokube.api.errors import NotFound, TooManyRequests
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.disruption import DisruptionController, go_selector, scaled_value, set_condition
from nanokube.util.timeutil import now, rfc3339

JSON = dict[str, Any]
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


class Api:
    def __init__(self, cluster: InProcessCluster) -> None:
        self.c = cluster.client
        self.cluster = cluster
        self.pods = cluster.resource("", "v1", "pods")
        self.pdbs = cluster.resource("policy", "v1", "poddisruptionbudgets")
        self.events = cluster.resource("", "v1", "events")

    async def pod(self, name: str, *, ready: bool = True, owner: JSON | None = None, app: str = "web") -> JSON:
        meta: JSON = {"name": name, "labels": {"app": app}}
        if owner is not None:
            meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "controller": True,
                                        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]
        await self.c.create(self.pods, "default", {"metadata": meta, "spec": TEMPLATE["spec"]})
        return await self.set_ready(name, ready)

    async def set_ready(self, name: str, ready: bool) -> JSON:
        status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}}
        return await self.c.patch(self.pods, "default", name, status, subresource="status")

    async def workload(self, group: str, plural: str, name: str, replicas: int, owner: JSON | None = None,
                       **extra: Any) -> JSON:
        resource = self.cluster.resource(group, "v1", plural)
        meta: JSON = {"name": name}
        if owner is not None:
            meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "controller": True,
                                        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]
        spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE, **extra}
        return await self.c.create(resource, "default", {"metadata": meta, "spec": spec})

    async def budget(self, name: str, **spec: Any) -> None:
        body = {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}
        await self.c.create(self.pdbs, "default", body)

    async def status(self, name: str, **wanted: Any) -> JSON:
        pdb = await self.c.get(self.pdbs, "default", name)
        status = pdb.get("status") or {}
        return status if all(status.get(k) == v for k, v in wanted.items()) else {}

    async def event(self, name: str, reason: str) -> str:
        for e in (await self.c.list(self.events, "default")).items:
            if e["involvedObject"].get("name") == name and e["reason"] == reason:
                return str(e["message"])
        return ""


@asynccontextmanager
async def disruption() -> AsyncIterator[Api]:
    async with InProcessCluster() as cluster:
        stop = asyncio.Event()
        task = asyncio.create_task(DisruptionController(cluster.client).run(stop=stop))
        try:
            yield Api(cluster)
        finally:
            stop.set()
            await task


def condition(status: JSON) -> tuple[str, str]:
    (cond,) = [c for c in status["conditions"] if c["type"] == "DisruptionAllowed"]
    return cond["status"], cond["reason"]


async def test_min_available_integer_and_eviction() -> None:
    async with disruption() as api:
        for name in ("a", "b", "c"):
            await api.pod(name)
        await api.budget("web", minAvailable=2)
        status = await eventually(lambda: api.status("web", currentHealthy=3))
        assert (status["desiredHealthy"], status["expectedPods"], status["disruptionsAllowed"]) == (2, 3, 1)
        assert status["observedGeneration"] == 1
        assert condition(status) == ("True", "SufficientPods")
        # A pod of the budget that is not ready does not count as healthy.
        await api.pod("d", ready=False)
        status = await eventually(lambda: api.status("web", expectedPods=4))
        assert status["currentHealthy"] == 3 and status["disruptionsAllowed"] == 1

        await api.c.evict("default", "a")
        with pytest.raises(NotFound):
            await api.c.get(api.pods, "default", "a")
        status = await eventually(lambda: api.status("web", currentHealthy=2))
        assert status["disruptionsAllowed"] == 0
        assert condition(status) == ("False", "InsufficientPods")
        with pytest.raises(TooManyRequests) as refused:
            await api.c.evict("default", "b")
        assert refused.value.code == 429
        assert (await api.c.get(api.pods, "default", "b"))["metadata"]["name"] == "b"

        # A spec change is observed: the budget's generation moves on.
        await api.c.patch(api.pdbs, "default", "web", {"spec": {"minAvailable": 1}})
        status = await eventually(lambda: api.status("web", observedGeneration=2))
        assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (1, 1)


async def test_max_unavailable_counts_the_controllers_scale() -> None:
    async with disruption() as api:
        rs = await api.workload("apps", "replicasets", "web", 4)
        for i, ready in enumerate((True, True, True, False)):
            await api.pod(f"web-{i}", ready=ready, owner=rs)
        await api.budget("web", maxUnavailable=1)
        status = await eventually(lambda: api.status("web", expectedPods=4, currentHealthy=3))
        assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 0)
        await api.set_ready("web-3", True)
        status = await eventually(lambda: api.status("web", currentHealthy=4))
        assert status["disruptionsAllowed"] == 1
        # Scaling the controller changes what is expected, before any pod follows.
        await api.c.patch(api.cluster.resource("apps", "v1", "replicasets"), "default", "web", {"spec": {"replicas": 6}})
        status = await eventually(lambda: api.status("web", expectedPods=6))
        assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (5, 0)


async def test_percentages_use_the_deployment_above_the_replicaset_and_statefulsets() -> None:
    async with disruption() as api:
        deployment = await api.workload("apps", "deployments", "web", 4)
        rs = await api.workload("apps", "replicasets", "web-abc", 4, owner=deployment)
        for i in range(4):
            await api.pod(f"web-{i}", owner=rs)
        await api.budget("half", minAvailable="50%")
        status = await eventually(lambda: api.status("half", expectedPods=4))
        assert (status["desiredHealthy"], status["currentHealthy"], status["disruptionsAllowed"]) == (2, 4, 2)

        sts = await api.workload("apps", "statefulsets", "db", 3, serviceName="db")
        for i in range(3):
            await api.pod(f"db-{i}", owner=sts, app="db")
        await api.c.create(api.pdbs, "default", {"metadata": {"name": "db"}, "spec": {
            "selector": {"matchLabels": {"app": "db"}}, "maxUnavailable": "25%"}})
        status = await eventually(lambda: api.status("db", expectedPods=3))
        # 25% of 3 rounds up to one pod that may be unavailable.
        assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (2, 1)


async def test_unmanaged_pods_and_unscalable_controllers() -> None:
    async with disruption() as api:
        await api.pod("bare")
        await api.budget("web", minAvailable="50%")
        status = await eventually(lambda: api.status("web", currentHealthy=1))
        assert (status["expectedPods"], status["disruptionsAllowed"]) == (0, 0)
        message = await eventually(lambda: api.event("web", "UnmanagedPods"))
        assert message.startswith("Pods selected by this PodDisruptionBudget (selector: &LabelSelector{MatchLabels:"
                                  "map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}) "
                                  "were found to be unmanaged.")

        job = await api.c.create(api.cluster.resource("batch", "v1", "jobs"), "default", {
            "metadata": {"name": "batch"},
            "spec": {"template": {"metadata": {"labels": {"app": "job"}},
                                  "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}})
        await api.pod("batch-1", owner=job, app="job")
        await api.c.create(api.pdbs, "default", {"metadata": {"name": "job"}, "spec": {
            "selector": {"matchLabels": {"app": "job"}}, "maxUnavailable": 1}})

        async def failed() -> JSON:
            status = await api.status("job")
            return status if status.get("conditions") and condition(status)[1] == "SyncFailed" else {}

        status = await eventually(failed)
        assert status["disruptionsAllowed"] == 0
        (cond,) = status["conditions"]
        assert cond["message"] == "jobs.batch does not implement the scale subresource"
        assert await eventually(lambda: api.event("job", "CalculateExpectedPodCountFailed"))

        await api.c.create(api.pdbs, "default", {"metadata": {"name": "empty"}, "spec": {
            "selector": {"matchLabels": {"app": "nothing"}}, "minAvailable": 1}})
        assert await eventually(lambda: api.event("empty", "NoPods")) == "No matching pods found"


async def test_recently_evicted_pods_are_not_healthy_until_the_record_expires() -> None:
    async with disruption() as api:
        for name in ("a", "b", "c"):
            await api.pod(name)
        await api.budget("web", minAvailable=1)
        await eventually(lambda: api.status("web", currentHealthy=3))
        pdb = await api.c.get(api.pdbs, "default", "web")
        stale = rfc3339(now() - timedelta(minutes=3))
        body = {**pdb, "status": {**pdb["status"], "disruptedPods": {"a": rfc3339(), "b": stale}}}
        await api.c.update(api.pdbs, "default", body, subresource="status")
        # "a" was evicted just now and counts as going; "b" was expected to go long ago and counts again.
        status = await eventually(lambda: api.status("web", disruptedPods={"a": body["status"]["disruptedPods"]["a"]}))
        assert (status["currentHealthy"], status["disruptionsAllowed"]) == (2, 1)
        assert await eventually(lambda: api.event("b", "NotDeleted")) == (
            "Pod was expected by PDB default/web to be deleted but it wasn't")


def test_scaled_values_round_up() -> None:
    assert scaled_value(3, 10) == 3
    assert scaled_value("25%", 3) == 1
    assert scaled_value("50%", 5) == 3
    assert scaled_value("0%", 5) == 0


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    first = set_condition([], {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}, "t1")
    same = set_condition(first, {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}, "t2")
    flipped = set_condition(same, {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods"}, "t3")
    assert [c["lastTransitionTime"] for c in (*first, *same, *flipped)] == ["t1", "t1", "t3"]
    assert flipped[0]["reason"] == "InsufficientPods"


def test_go_selector_text() -> None:
    selector = {"matchLabels": {"b": "2", "a": "1"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]}]}
    assert go_selector(selector) == ("&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:"
                                     "[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:In,"
                                     "Values:[x y],},},}")
