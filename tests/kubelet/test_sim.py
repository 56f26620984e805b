"""Simulated nodes end to end on an in-process cluster: registration, leases, Pod lifecycles, deletion, stop/start."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from kubelet_helpers import condition, eventually, pod, sim_cluster, validate

from nanokube.api.errors import NotFound
from nanokube.kubelet.runtime.interface import ContainerMetadata, ContainerState, ContainerStatus
from nanokube.kubelet.sim import STOPPED_ANNOTATION, node_pod_cidr, set_node_stopped, sim_readiness


def running_ready(p: dict) -> bool:
    ready = condition(p, "Ready")
    return p.get("status", {}).get("phase") == "Running" and ready is not None and ready["status"] == "True"


async def test_nodes_register_ready_with_capacity_and_renew_their_leases() -> None:
    async with sim_cluster(nodes=3, labels={"zone": "a"},
                           taints=[{"key": "dedicated", "value": "sim", "effect": "NoSchedule"}]) as c:
        listed = await c.client.list(c.nodes)
        assert sorted(n["metadata"]["name"] for n in listed.items) == ["sim-node-0", "sim-node-1", "sim-node-2"]
        node = next(n for n in listed.items if n["metadata"]["name"] == "sim-node-2")
        validate(node)
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == "sim-node-2" and labels["type"] == "sim" and labels["zone"] == "a"
        assert node["spec"]["podCIDR"] == "10.42.2.0/24"
        assert node["spec"]["taints"] == [{"key": "dedicated", "value": "sim", "effect": "NoSchedule"}]
        status = node["status"]
        assert status["allocatable"]["pods"] == "110" and status["capacity"]["cpu"] == "4"
        assert {a["type"] for a in status["addresses"]} == {"InternalIP", "Hostname"}
        assert status["nodeInfo"]["kubeletVersion"] == "v1.37.0"
        assert {c["type"]: c["status"] for c in status["conditions"]} == {
            "Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False",
            "NetworkUnavailable": "False"}
        first = await c.lease("sim-node-2")
        validate(first)
        assert first["spec"]["holderIdentity"] == "sim-node-2"
        assert first["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

        async def renewed() -> bool:
            lease = await c.lease("sim-node-2")
            return lease["spec"]["renewTime"] > first["spec"]["renewTime"]

        await eventually(renewed, what="a lease renewal")


def test_pod_cidrs_skip_the_service_range() -> None:
    assert node_pod_cidr(0) == "10.42.0.0/24"
    assert node_pod_cidr(255) == "10.42.255.0/24"
    assert node_pod_cidr(256) == "10.44.0.0/24"
    assert node_pod_cidr(4999) == "10.62.135.0/24"  # 19 blocks of 256 past 10.42, one skipped


async def test_bound_pod_runs_ready_with_an_ip_from_its_node_cidr() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("web", "sim-node-1", containers=2))
        p = await c.pod_when("web", running_ready, what="web Running and Ready")
        validate(p)
        status = p["status"]
        assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("10.42.1.0/24")
        assert status["podIPs"] == [{"ip": status["podIP"]}]
        assert status["hostIP"] == "172.30.0.2" and status["startTime"]
        types = [cond["type"] for cond in status["conditions"]]
        assert types == ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
        assert all(cond["lastTransitionTime"] for cond in status["conditions"])
        assert [s["name"] for s in status["containerStatuses"]] == ["c0", "c1"]
        for cs in status["containerStatuses"]:
            assert cs["ready"] and cs["started"] and "running" in cs["state"] and cs["restartCount"] == 0
            assert cs["containerID"].startswith("fake://") and cs["imageID"].startswith("docker.io/library/nginx@")
        assert c.client.checked > 0


async def test_a_pod_bound_through_the_binding_subresource_runs() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("late"))
        await asyncio.sleep(0.05)
        assert (await c.get_pod("late") or {}).get("status", {}).get("phase") == "Pending"
        await c.client.bind("default", "late", "sim-node-0")
        p = await c.pod_when("late", running_ready)
        assert p["status"]["podIP"].startswith("10.42.0.")


async def test_pods_on_other_nodes_are_left_alone() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("elsewhere", "real-node"))
        await c.client.create(c.pods, "default", pod("here", "sim-node-0"))
        await c.pod_when("here", running_ready)
        other = await c.get_pod("elsewhere")
        assert other is not None and other["status"]["phase"] == "Pending"
        assert "containerStatuses" not in other["status"]


async def test_init_containers_complete_in_order_before_the_app_starts() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("initd", "sim-node-0", init=["first", "second"]))
        p = await c.pod_when("initd", running_ready)
        inits = p["status"]["initContainerStatuses"]
        assert [s["name"] for s in inits] == ["first", "second"]
        for s in inits:
            assert s["state"]["terminated"]["exitCode"] == 0 and s["state"]["terminated"]["reason"] == "Completed"
            assert s["ready"] is True
        assert inits[0]["state"]["terminated"]["finishedAt"] <= inits[1]["state"]["terminated"]["startedAt"]
        assert condition(p, "Initialized")["status"] == "True"  # type: ignore[index]


async def test_sidecars_start_before_the_app_and_stop_once_it_is_done() -> None:
    body = pod("batch", "sim-node-0", annotations={"sim.nanokube.io/run-seconds.web": "0.1"},
               restart_policy="Never", init=["setup"])
    body["spec"]["initContainers"].append({"name": "proxy", "image": "envoy:v1", "restartPolicy": "Always"})
    async with sim_cluster() as c:
        created = await c.client.create(c.pods, "default", body)
        p = await c.pod_when("batch", lambda p: p["status"].get("phase") == "Succeeded", what="batch Succeeded")
        validate(p)
        inits = {s["name"]: s for s in p["status"]["initContainerStatuses"]}
        assert inits["setup"]["state"]["terminated"]["exitCode"] == 0
        assert "terminated" in inits["proxy"]["state"]  # stopped after the app finished
        assert inits["setup"]["state"]["terminated"]["finishedAt"] <= inits["proxy"]["state"]["terminated"][
            "startedAt"]
        web = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert web["exitCode"] == 0 and web["startedAt"] >= inits["proxy"]["state"]["terminated"]["startedAt"]
        await asyncio.sleep(0.1)  # late events must not bring anything back
        runtime = c.sim.nodes["sim-node-0"].runtime
        assert len(await runtime.list_pod_sandboxes(created["metadata"]["uid"])) == 1
        assert (await c.get_pod("batch") or {})["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize(("code", "phase", "reason"), [("0", "Succeeded", "Completed"), ("3", "Failed", "Error")])
async def test_run_seconds_and_exit_code_end_a_never_restarting_pod(code: str, phase: str, reason: str) -> None:
    notes = {"sim.nanokube.io/run-seconds": "0.1", "sim.nanokube.io/exit-code": code}
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("job", "sim-node-0", annotations=notes, restart_policy="Never"))
        p = await c.pod_when("job", lambda p: p["status"].get("phase") == phase, what=f"job {phase}")
        validate(p)
        terminated = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == int(code) and terminated["reason"] == reason
        ready = condition(p, "Ready")
        assert ready is not None and ready["status"] == "False"
        assert ready["reason"] == ("PodCompleted" if phase == "Succeeded" else "PodFailed")
        assert condition(p, "PodReadyToStartContainers")["status"] == "False"  # type: ignore[index]
        assert p["status"]["podIP"]  # the record keeps the address the Pod had


async def test_always_restarts_with_back_off_and_counts_restarts() -> None:
    notes = {"sim.nanokube.io/run-seconds": "0.05", "sim.nanokube.io/exit-code": "1"}
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("crash", "sim-node-0", annotations=notes))
        p = await c.pod_when("crash", lambda p: any(s.get("restartCount", 0) >= 2
                                                    for s in p["status"].get("containerStatuses") or []),
                             what="two restarts")
        validate(p)
        assert p["status"]["phase"] == "Running"
        cs = p["status"]["containerStatuses"][0]
        assert cs["lastState"]["terminated"]["exitCode"] == 1

        async def backing_off() -> dict | None:
            found = await c.get_pod("crash")
            waiting = found["status"]["containerStatuses"][0]["state"].get("waiting") if found else None
            return found if waiting and waiting.get("reason") == "CrashLoopBackOff" else None

        p = await eventually(backing_off, what="CrashLoopBackOff")
        waiting = p["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["message"].startswith("back-off ") and "restarting failed container=web pod=crash_default(" \
            in waiting["message"]
        events = await c.client.list(c.events, "default")
        assert any(e["reason"] == "BackOff" and e["involvedObject"]["name"] == "crash" for e in events.items)


async def test_on_failure_restarts_failures_and_then_succeeds_on_exit_zero() -> None:
    async with sim_cluster() as c:
        ok = {"sim.nanokube.io/run-seconds": "0.05", "sim.nanokube.io/exit-code": "0"}
        await c.client.create(c.pods, "default", pod("fine", "sim-node-0", annotations=ok,
                                                      restart_policy="OnFailure"))
        p = await c.pod_when("fine", lambda p: p["status"].get("phase") == "Succeeded")
        assert p["status"]["containerStatuses"][0]["restartCount"] == 0
        bad = {"sim.nanokube.io/run-seconds": "0.05", "sim.nanokube.io/exit-code": "2"}
        await c.client.create(c.pods, "default", pod("flaky", "sim-node-1", annotations=bad,
                                                      restart_policy="OnFailure"))
        p = await c.pod_when("flaky", lambda p: (p["status"].get("containerStatuses") or [{}])[0]
                             .get("restartCount", 0) >= 1)
        assert p["status"]["phase"] in ("Running", "Pending")


async def test_ready_after_annotation_delays_readiness() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("slow", "sim-node-0",
                                                      annotations={"sim.nanokube.io/ready-after-seconds": "0.3"}))
        p = await c.pod_when("slow", lambda p: p["status"].get("phase") == "Running")
        if condition(p, "Ready")["status"] != "True":  # type: ignore[index]
            assert condition(p, "Ready")["reason"] == "ContainersNotReady"  # type: ignore[index]
            assert condition(p, "ContainersReady")["message"] == \
                "containers with unready status: [web]"  # type: ignore[index]
        await c.pod_when("slow", running_ready, what="slow Ready")


async def test_graceful_deletion_stops_the_pod_then_removes_it() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("doomed", "sim-node-0"))
        await c.pod_when("doomed", running_ready)
        deleting = await c.client.delete(c.pods, "default", "doomed", grace_period_seconds=30)
        assert deleting["metadata"]["deletionTimestamp"]  # graceful: the node must confirm

        async def gone() -> bool:
            return await c.get_pod("doomed") is None

        await eventually(gone, what="the pod deleted")
        events = await c.client.list(c.events, "default")
        assert any(e["reason"] == "Killing" and e["message"] == "Stopping container web" for e in events.items)


async def test_a_pod_deleted_before_it_started_is_removed() -> None:
    async with sim_cluster(pod_start_delay=(0.3, 0.3)) as c:
        await c.client.create(c.pods, "default", pod("brief", "sim-node-0"))
        await asyncio.sleep(0.05)
        await c.client.delete(c.pods, "default", "brief")

        async def gone() -> bool:
            return await c.get_pod("brief") is None

        await eventually(gone, what="the pod deleted")


async def test_stopped_node_stops_renewing_its_lease_and_resumes_when_started() -> None:
    async with sim_cluster() as c:
        await set_node_stopped(c.client, "sim-node-1", True)
        node = await c.client.get(c.nodes, "", "sim-node-1")
        assert node["metadata"]["annotations"][STOPPED_ANNOTATION] == "true"
        await eventually(lambda: _true(c.sim.nodes["sim-node-1"].stopped), what="the sim to obey")
        await asyncio.sleep(0.15)  # let a renewal in flight land
        frozen = (await c.lease("sim-node-1"))["spec"]["renewTime"]
        other = (await c.lease("sim-node-0"))["spec"]["renewTime"]

        async def other_renewed() -> bool:
            return (await c.lease("sim-node-0"))["spec"]["renewTime"] > other

        await eventually(other_renewed, what="the running node's renewal")
        await eventually(other_renewed, what="another renewal")
        assert (await c.lease("sim-node-1"))["spec"]["renewTime"] == frozen
        await c.client.create(c.pods, "default", pod("stuck", "sim-node-1"))
        await asyncio.sleep(0.2)
        assert (await c.get_pod("stuck") or {})["status"]["phase"] == "Pending"

        await set_node_stopped(c.client, "sim-node-1", False)

        async def renewed() -> bool:
            return (await c.lease("sim-node-1"))["spec"]["renewTime"] > frozen

        await eventually(renewed, what="renewals to resume")
        await c.pod_when("stuck", running_ready, what="the pod to start once the node is back")


async def test_stop_node_from_python_and_start_again() -> None:
    async with sim_cluster() as c:
        c.sim.stop_node("sim-node-0")
        await asyncio.sleep(0.15)  # let a renewal in flight land
        frozen = (await c.lease("sim-node-0"))["spec"]["renewTime"]
        other = (await c.lease("sim-node-1"))["spec"]["renewTime"]

        async def other_renewed() -> bool:
            return (await c.lease("sim-node-1"))["spec"]["renewTime"] > other

        await eventually(other_renewed, what="the running node's renewal")
        assert (await c.lease("sim-node-0"))["spec"]["renewTime"] == frozen
        c.sim.start_node("sim-node-0")

        async def renewed() -> bool:
            return (await c.lease("sim-node-0"))["spec"]["renewTime"] > frozen

        await eventually(renewed, what="renewals to resume")


def test_sim_readiness_waits_for_the_annotation_delay() -> None:
    started = ContainerStatus("id", "sb", ContainerMetadata("web"), ContainerState.RUNNING, 100.0, "img", "ref",
                              started_at=100.0)
    plain = pod("p")
    assert sim_readiness(plain, plain["spec"]["containers"][0], started, 100.0) == (True, None)
    slow = pod("p", annotations={"sim.nanokube.io/ready-after-seconds": "5"})
    assert sim_readiness(slow, slow["spec"]["containers"][0], started, 101.0) == (False, 4.0)
    assert sim_readiness(slow, slow["spec"]["containers"][0], started, 105.0) == (True, None)
    one = pod("p", annotations={"sim.nanokube.io/ready-after-seconds.web": "2",
                                "sim.nanokube.io/ready-after-seconds": "9"})
    assert sim_readiness(one, one["spec"]["containers"][0], started, 101.0) == (False, 1.0)


async def test_a_node_created_with_the_sim_annotation_is_adopted() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.nodes, "", {"metadata": {"name": "extra", "labels": {"type": "sim"},
                                                         "annotations": {"sim.nanokube.io/node": "true"}}})

        async def ready() -> dict | None:
            node = await c.client.get(c.nodes, "", "extra")
            cond = condition(node, "Ready")
            return node if cond is not None and cond["status"] == "True" else None

        node = await eventually(ready, what="the adopted node Ready")
        assert node["spec"]["podCIDR"] == "10.42.2.0/24"
        await c.client.create(c.pods, "default", pod("on-extra", "extra"))
        p = await c.pod_when("on-extra", running_ready)
        assert p["status"]["podIP"].startswith("10.42.2.")


async def test_pods_bound_before_their_node_is_adopted_run_once_it_is() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.pods, "default", pod("early", "later"))
        await asyncio.sleep(0.05)
        await c.client.create(c.nodes, "", {"metadata": {"name": "later",
                                                         "annotations": {"sim.nanokube.io/node": "true"}}})
        p = await c.pod_when("early", running_ready, what="the early pod running on the adopted node")
        assert p["status"]["podIP"].startswith("10.42.2.")


async def test_add_node_while_running() -> None:
    async with sim_cluster() as c:
        name = c.sim.add_node(labels={"pool": "extra"})
        assert name == "sim-node-2" and not c.sim.ready.is_set()
        await asyncio.wait_for(c.sim.ready.wait(), 10)
        node = await c.client.get(c.nodes, "", name)
        assert node["metadata"]["labels"]["pool"] == "extra"
        assert condition(node, "Ready")["status"] == "True"  # type: ignore[index]


async def test_a_deleted_node_is_forgotten() -> None:
    async with sim_cluster() as c:
        await c.client.delete(c.nodes, "", "sim-node-1")
        await eventually(lambda: _true("sim-node-1" not in c.sim.nodes), what="the node dropped")
        with pytest.raises(NotFound):
            await c.client.get(c.nodes, "", "sim-node-1")


async def _true(value: bool) -> bool:
    return value
