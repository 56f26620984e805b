"""Probes as the kubelet runs them: workers per container, thresholds, startup gating, and what the syncer does
with the verdicts (readiness in the status, liveness failures killing and restarting the container)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubelet_helpers import condition, eventually
from test_probes_helpers import ScriptedRuntime, exec_probe, probed_node, probed_pod

from nanokube.kubelet.podstatus import PodRuntimeState
from nanokube.kubelet.probes import ProbeKind, ProbeManager, kill_grace
from nanokube.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerMetadata,
    ImageSpec,
    PodSandboxConfig,
    PodSandboxMetadata,
)

JSON = dict[str, Any]
FAIL = (1, b"not healthy\n")


async def started(runtime: ScriptedRuntime, uid: str, name: str = "web") -> PodRuntimeState:
    """A sandbox with one running container named ``name``, as the runtime reports it."""
    sandbox = await runtime.run_pod_sandbox(PodSandboxConfig(PodSandboxMetadata("p", "default", uid)))
    await runtime.pull_image(ImageSpec("nginx:1.27"))
    cid = await runtime.create_container(sandbox, ContainerConfig(ContainerMetadata(name), "nginx:1.27"),
                                         PodSandboxConfig(PodSandboxMetadata("p", "default", uid)))
    await runtime.start_container(cid)
    return PodRuntimeState(uid, "fake", await runtime.list_pod_sandboxes(uid), await runtime.list_containers(sandbox))


def bare_pod(uid: str, **probes: JSON) -> JSON:
    return {"metadata": {"name": "p", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", **probes}]}}


def fast(cmd: str, **settings: Any) -> JSON:
    return {"exec": {"command": cmd.split()}, "periodSeconds": 0.02, **settings}


async def until(check: Any, what: str) -> None:
    async def poll() -> bool:
        return bool(check())

    await eventually(poll, timeout=5, what=what)


async def test_readiness_follows_its_probe_with_thresholds_and_wakes_the_pod() -> None:
    runtime = ScriptedRuntime()
    woken: list[str] = []
    manager = ProbeManager(runtime, wake=woken.append)
    state = await started(runtime, "u1")
    cid = state.containers[0].id
    manager.update(bare_pod("u1", readinessProbe=fast("ready", successThreshold=2, failureThreshold=2)), state,
                   "10.42.9.2")
    assert not manager.ready("u1", cid)  # readiness starts out failing
    await until(lambda: manager.ready("u1", cid), "ready after two successes")
    assert runtime.execs("ready") >= 2 and woken == ["u1"]
    runtime.answers["ready"] = FAIL
    await until(lambda: not manager.ready("u1", cid), "unready after two failures")
    assert woken == ["u1", "u1"] and manager.failed("u1", cid) is None  # readiness never kills
    await manager.close()


async def test_startup_probe_gates_liveness_and_a_liveness_failure_holds_the_worker() -> None:
    runtime = ScriptedRuntime()
    runtime.answers["boot"] = FAIL
    manager = ProbeManager(runtime)
    state = await started(runtime, "u2")
    cid = state.containers[0].id
    manager.update(bare_pod("u2", startupProbe=fast("boot", failureThreshold=1000),
                            livenessProbe=fast("live", failureThreshold=1)), state, "10.42.9.2")
    await until(lambda: runtime.execs("boot") >= 3, "startup probed")
    assert not manager.started("u2", cid) and not manager.ready("u2", cid)
    assert runtime.execs("live") == 0  # liveness waits for startup
    runtime.answers.pop("boot")
    await until(lambda: manager.started("u2", cid), "started")
    assert manager.ready("u2", cid)  # no readiness probe: ready once started
    runtime.answers["live"] = FAIL
    await until(lambda: manager.failed("u2", cid) is ProbeKind.LIVENESS, "liveness failed")
    probed = runtime.execs("live")
    await asyncio.sleep(0.1)
    assert runtime.execs("live") == probed  # on hold: the container is about to be killed
    await manager.close()


async def test_initial_delay_and_stopped_containers() -> None:
    runtime = ScriptedRuntime()
    manager = ProbeManager(runtime)
    state = await started(runtime, "u3")
    pod = bare_pod("u3", readinessProbe=fast("ready", initialDelaySeconds=0.2))
    manager.update(pod, state, "10.42.9.2")
    await asyncio.sleep(0.05)
    assert runtime.execs("ready") == 0  # still in its initial delay
    await until(lambda: runtime.execs("ready") > 0, "probed after the delay")
    await runtime.stop_container(state.containers[0].id, 0)
    stopped = PodRuntimeState("u3", "fake", state.sandboxes, await runtime.list_containers())
    manager.update(pod, stopped, "10.42.9.2")
    probed = runtime.execs("ready")
    await asyncio.sleep(0.1)
    assert runtime.execs("ready") == probed  # no worker for a container that is not running
    await manager.close()


async def test_unhealthy_events_use_the_kubelets_words() -> None:
    async with probed_node() as node:
        node.runtime.answers["check"] = FAIL
        body = probed_pod("sick", {"readinessProbe": exec_probe("check", failureThreshold=1)})
        await node.client.create(node.pods, "default", body)
        await eventually(lambda: node.event_messages("Unhealthy"), what="an Unhealthy event")
        assert (await node.event_messages("Unhealthy"))[0] == "Readiness probe failed: not healthy\n"


def test_kill_grace_prefers_the_probes_own() -> None:
    spec = {"livenessProbe": {"terminationGracePeriodSeconds": 3}}
    assert kill_grace(spec, ProbeKind.LIVENESS, 30) == 3
    assert kill_grace(spec, ProbeKind.STARTUP, 30) == 30


async def test_failing_liveness_kills_and_restarts_the_container() -> None:
    async with probed_node() as node:
        node.runtime.answers["alive"] = FAIL
        # Exits 0 on SIGTERM (the fake's default) yet restarts under OnFailure: a probe kill always restarts.
        body = probed_pod("flaky", {"livenessProbe": exec_probe("alive", failureThreshold=1)},
                          restart_policy="OnFailure")
        await node.client.create(node.pods, "default", body)

        def restarted(p: JSON) -> bool:
            statuses = p.get("status", {}).get("containerStatuses") or []
            return bool(statuses) and statuses[0]["restartCount"] >= 2

        found = await node.pod_when("flaky", restarted, "restarts after liveness failures")
        last = found["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert last["exitCode"] == 0  # stopped gracefully, restarted all the same
        assert "Liveness probe failed: not healthy\n" in await node.event_messages("Unhealthy")
        assert "Container web failed liveness probe, will be restarted" in await node.event_messages("Killing")


async def test_failing_readiness_marks_the_pod_unready_and_passing_marks_it_ready() -> None:
    async with probed_node() as node:
        node.runtime.answers["ready"] = FAIL
        body = probed_pod("gate", {"readinessProbe": exec_probe("ready", failureThreshold=1)})
        await node.client.create(node.pods, "default", body)

        def ready_is(value: str) -> Any:
            def test(p: JSON) -> bool:
                found = condition(p, "Ready")
                return p["status"].get("phase") == "Running" and found is not None and found["status"] == value
            return test

        unready = await node.pod_when("gate", ready_is("False"), "Running but not Ready")
        assert condition(unready, "ContainersReady")["message"] == "containers with unready status: [web]"  # type: ignore[index]
        assert unready["status"]["containerStatuses"][0]["ready"] is False
        node.runtime.answers.pop("ready")
        ready = await node.pod_when("gate", ready_is("True"), "Ready once the probe passes")
        assert ready["status"]["containerStatuses"][0]["ready"] is True
        assert ready["status"]["containerStatuses"][0]["restartCount"] == 0


async def test_a_container_reports_started_only_after_its_startup_probe() -> None:
    async with probed_node() as node:
        node.runtime.answers["boot"] = FAIL
        body = probed_pod("slow", {"startupProbe": exec_probe("boot", failureThreshold=100)})
        await node.client.create(node.pods, "default", body)

        def running(p: JSON) -> bool:
            statuses = p.get("status", {}).get("containerStatuses") or []
            return bool(statuses) and "running" in statuses[0]["state"]

        booting = await node.pod_when("slow", running, "running")
        assert booting["status"]["containerStatuses"][0]["started"] is False
        assert booting["status"]["containerStatuses"][0]["ready"] is False
        node.runtime.answers.pop("boot")
        done = await node.pod_when("slow", lambda p: p["status"]["containerStatuses"][0]["started"], "started")
        assert done["status"]["containerStatuses"][0]["ready"] is True


def with_sidecar(name: str, sidecar: JSON, restart_policy: str = "Always") -> JSON:
    body = probed_pod(name, {}, restart_policy=restart_policy)
    body["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy:v1", "restartPolicy": "Always", **sidecar}]
    return body


def sidecar_running(p: JSON) -> bool:
    statuses = p.get("status", {}).get("initContainerStatuses") or []
    return bool(statuses) and "running" in statuses[0]["state"]


async def test_a_sidecars_startup_probe_holds_back_the_app_containers() -> None:
    async with probed_node() as node:
        node.runtime.answers["proxy-up"] = FAIL
        body = with_sidecar("meshed", {"startupProbe": exec_probe("proxy-up", failureThreshold=100)})
        await node.client.create(node.pods, "default", body)
        await until(lambda: node.runtime.execs("proxy-up") >= 2, "the sidecar probed")
        waiting = await node.pod_when("meshed", sidecar_running, "the sidecar running")
        app = waiting["status"]["containerStatuses"][0]
        assert "waiting" in app["state"] and app["state"]["waiting"]["reason"] == "PodInitializing"
        assert waiting["status"]["initContainerStatuses"][0]["started"] is False
        assert waiting["status"]["initContainerStatuses"][0]["ready"] is False
        initialized = condition(waiting, "Initialized")
        assert initialized is not None and initialized["status"] == "False"  # not until its startup probe passes
        assert initialized["message"] == "containers with incomplete status: [proxy]"
        assert waiting["status"]["phase"] == "Pending"
        node.runtime.answers.pop("proxy-up")
        running = await node.pod_when("meshed", lambda p: "running" in p["status"]["containerStatuses"][0]["state"],
                                      "the app started once the sidecar has")
        assert running["status"]["initContainerStatuses"][0]["started"] is True
        assert condition(running, "Initialized")["status"] == "True"  # type: ignore[index]


async def test_a_sidecar_failing_liveness_restarts_even_in_a_never_restarting_pod() -> None:
    async with probed_node() as node:
        node.runtime.answers["proxy-alive"] = FAIL
        body = with_sidecar("meshed", {"livenessProbe": exec_probe("proxy-alive", failureThreshold=1)},
                            restart_policy="Never")
        await node.client.create(node.pods, "default", body)
        found = await node.pod_when(
            "meshed", lambda p: (p["status"].get("initContainerStatuses") or [{}])[0].get("restartCount", 0) >= 1,
            "the sidecar restarted")
        assert found["status"]["containerStatuses"][0]["restartCount"] == 0  # the app is left alone
        assert "Container proxy failed liveness probe, will be restarted" in await node.event_messages("Killing")


async def test_a_finished_container_is_no_longer_probed() -> None:
    async with probed_node() as node:
        body = probed_pod("done", {"readinessProbe": exec_probe("ready")}, restart_policy="Never")
        body["metadata"]["annotations"] = {"sim.nanokube.io/run-seconds": "0.5"}
        await node.client.create(node.pods, "default", body)
        await node.pod_when("done", lambda p: p["status"].get("phase") == "Succeeded", "Succeeded")
        probed = node.runtime.execs("ready")
        assert probed >= 1
        await asyncio.sleep(1.2)  # longer than the probe's period
        assert node.runtime.execs("ready") == probed
        assert await node.event_messages("Unhealthy") == []
