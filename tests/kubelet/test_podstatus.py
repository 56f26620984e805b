"""Pod status generation: getPhase's table, kubelet condition wording, container statuses from runtime records."""

from __future__ import annotations

from typing import Any

import pytest
from kubelet_helpers import pod, validate

from nanokube.kubelet.podstatus import PodRuntimeState, StatusInputs, generate_status, go_list, pod_phase
from nanokube.kubelet.runtime.interface import (
    ContainerMetadata,
    ContainerState,
    ContainerStatus,
    PodSandboxMetadata,
    PodSandboxStatus,
    SandboxState,
)


def running() -> dict[str, Any]:
    return {"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "started": True}


def exited(code: int) -> dict[str, Any]:
    return {"state": {"terminated": {"exitCode": code}}}


def waiting(last_code: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"state": {"waiting": {"reason": "X"}}}
    if last_code is not None:
        status["lastState"] = {"terminated": {"exitCode": last_code}}
    return status


def phase_of(policy: str, statuses: dict[str, dict[str, Any]], *, init: list[str] | None = None,
             sidecars: list[str] | None = None, terminal: bool = False, containers: int = 1) -> str:
    p = pod("p", restart_policy=policy, containers=containers, init=init)
    if sidecars:
        p["spec"]["initContainers"] = p["spec"].get("initContainers", []) + [
            {"name": n, "image": "x", "restartPolicy": "Always"} for n in sidecars]
    return pod_phase(p, {name: {"name": name, **s} for name, s in statuses.items()}, terminal)


@pytest.mark.parametrize(("policy", "statuses", "phase"), [
    ("Always", {}, "Pending"),
    ("Always", {"web": waiting()}, "Pending"),
    ("Always", {"web": running()}, "Running"),
    ("Always", {"web": exited(0)}, "Running"),  # about to restart
    ("Always", {"web": waiting(1)}, "Running"),  # crash-looping
    ("OnFailure", {"web": exited(0)}, "Succeeded"),
    ("OnFailure", {"web": exited(1)}, "Running"),
    ("Never", {"web": exited(0)}, "Succeeded"),
    ("Never", {"web": exited(2)}, "Failed"),
])
def test_phase_of_one_container(policy: str, statuses: dict[str, dict[str, Any]], phase: str) -> None:
    assert phase_of(policy, statuses) == phase


def test_phase_with_several_containers() -> None:
    both = {"c0": exited(0), "c1": running()}
    assert phase_of("Never", both, containers=2) == "Running"
    assert phase_of("Never", {"c0": exited(0), "c1": exited(1)}, containers=2) == "Failed"
    assert phase_of("Never", {"c0": exited(0)}, containers=2) == "Pending"  # c1 unknown


def test_phase_with_init_containers() -> None:
    assert phase_of("Always", {"i": running()}, init=["i"]) == "Pending"
    assert phase_of("Always", {"i": exited(0), "web": running()}, init=["i"]) == "Running"
    assert phase_of("Never", {"i": exited(1)}, init=["i"]) == "Failed"
    assert phase_of("OnFailure", {"i": waiting(1)}, init=["i"]) == "Pending"


def test_phase_with_sidecars() -> None:
    assert phase_of("Never", {"side": running(), "web": exited(0)}, sidecars=["side"]) == "Running"
    assert phase_of("Never", {"side": exited(0), "web": exited(0)}, sidecars=["side"]) == "Succeeded"
    unstarted = {"side": {"state": {"running": {}}, "started": False}}
    assert phase_of("Always", unstarted, sidecars=["side"]) == "Pending"


def test_terminal_pods_end_succeeded_or_failed_whatever_the_policy() -> None:
    assert phase_of("Always", {"web": exited(0)}, terminal=True) == "Succeeded"
    assert phase_of("Always", {"web": exited(137)}, terminal=True) == "Failed"


def test_go_list() -> None:
    assert go_list(["a", "b"]) == "[a b]"
    assert go_list([]) == "[]"


def _sandbox(ready: bool = True, ip: str = "10.42.0.7") -> PodSandboxStatus:
    return PodSandboxStatus("sb", PodSandboxMetadata("p", "default", "uid"),
                            SandboxState.READY if ready else SandboxState.NOT_READY, 1.0, ip)


def _container(name: str, state: ContainerState, *, attempt: int = 0, code: int = 0, at: float = 10.0,
               cid: str = "") -> ContainerStatus:
    return ContainerStatus(cid or f"{name}-{attempt}", "sb", ContainerMetadata(name, attempt), state, at,
                           "docker.io/library/nginx:1.27", "docker.io/library/nginx@sha256:ab",
                           started_at=at, finished_at=at + 1 if state is ContainerState.EXITED else 0.0,
                           exit_code=code, reason="" if state is not ContainerState.EXITED else
                           ("Completed" if code == 0 else "Error"))


def _full(p: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": "Pod", **p, "status": status}
    obj["metadata"] = {**p["metadata"], "uid": "uid", "namespace": "default"}
    return obj


def test_generated_status_of_a_running_pod() -> None:
    p = pod("p", "n")
    p["metadata"]["generation"] = 3
    state = PodRuntimeState("uid", "fake", [_sandbox()], [_container("web", ContainerState.RUNNING)])
    status = generate_status(p, state, StatusInputs({"web-0": True}, {}, ("172.30.0.1",)))
    assert status["phase"] == "Running" and status["observedGeneration"] == 3
    assert status["podIP"] == "10.42.0.7" and status["hostIPs"] == [{"ip": "172.30.0.1"}]
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", "True"),
        ("ContainersReady", "True"), ("PodScheduled", "True")]
    cs = status["containerStatuses"][0]
    assert cs["containerID"] == "fake://web-0" and cs["ready"] and cs["started"] and cs["lastState"] == {}
    validate(_full(p, status))


def test_generated_status_while_the_sandbox_is_created() -> None:
    p = pod("p", "n", init=["setup"])
    status = generate_status(p, PodRuntimeState("uid", "fake"), StatusInputs(host_ips=("172.30.0.1",)))
    assert status["phase"] == "Pending" and "podIP" not in status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PodReadyToStartContainers"]["status"] == "False"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [setup]"
    assert conditions["Ready"]["reason"] == "ContainersNotReady"
    assert conditions["ContainersReady"]["message"] == "containers with unready status: [web]"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["initContainerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    validate(_full(p, status))


def test_restarts_give_restart_count_last_state_and_crash_loop_reason() -> None:
    p = pod("p", "n")
    state = PodRuntimeState("uid", "fake", [_sandbox()], [
        _container("web", ContainerState.EXITED, attempt=2, code=1, at=30.0),
        _container("web", ContainerState.EXITED, attempt=1, code=1, at=20.0)])
    inputs = StatusInputs({}, {"web": ("CrashLoopBackOff", "back-off 20s restarting failed container=web")})
    status = generate_status(p, state, inputs)
    cs = status["containerStatuses"][0]
    assert cs["restartCount"] == 2 and cs["ready"] is False
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": "back-off 20s restarting failed container=web"}}
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["containerID"] == "fake://web-2"
    assert status["phase"] == "Running"
    validate(_full(p, status))


def test_terminal_status_reports_never_started_containers_as_unknown() -> None:
    p = pod("p", "n", restart_policy="Always")
    status = generate_status(p, PodRuntimeState("uid", "fake"), StatusInputs(terminal=True))
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "ContainerStatusUnknown" and terminated["exitCode"] == 137
    assert status["phase"] == "Failed"
    assert {c["type"]: c.get("reason") for c in status["conditions"]}["Ready"] == "PodFailed"
    validate(_full(p, status))


def test_terminal_phase_sticks_and_foreign_conditions_stay() -> None:
    p = pod("p", "n")
    p["status"] = {"phase": "Failed", "podIP": "10.42.0.9", "qosClass": "BestEffort",
                   "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]}
    state = PodRuntimeState("uid", "fake", [_sandbox(ready=False)], [_container("web", ContainerState.RUNNING)])
    status = generate_status(p, state, StatusInputs({"web-0": True}))
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["type"] == "DisruptionTarget"
    assert status["podIP"] == "10.42.0.9" and status["qosClass"] == "BestEffort"


def test_readiness_gates_hold_ready_back() -> None:
    p = pod("p", "n", readinessGates=[{"conditionType": "example.com/lb"}])
    state = PodRuntimeState("uid", "fake", [_sandbox()], [_container("web", ContainerState.RUNNING)])
    status = generate_status(p, state, StatusInputs({"web-0": True}))
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    assert ready["message"] == 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    p["status"] = {"conditions": [{"type": "example.com/lb", "status": "True"}]}
    status = generate_status(p, state, StatusInputs({"web-0": True}))
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"


def test_host_network_pods_take_the_node_ip() -> None:
    p = pod("p", "n", hostNetwork=True)
    state = PodRuntimeState("uid", "fake", [_sandbox(ip="")], [_container("web", ContainerState.RUNNING)])
    status = generate_status(p, state, StatusInputs({"web-0": True}, {}, ("172.30.0.4",)))
    assert status["podIP"] == "172.30.0.4"


def _sidecar_pod() -> dict[str, Any]:
    p = pod("p", "n")
    p["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy:v1", "restartPolicy": "Always",
                                    "startupProbe": {"exec": {"command": ["up"]}}}]
    return p


def test_a_sidecar_not_yet_started_keeps_the_pod_uninitialized() -> None:
    p = _sidecar_pod()
    state = PodRuntimeState("uid", "fake", [_sandbox()], [_container("proxy", ContainerState.RUNNING)])
    # Readiness says yes, but the startup probe has not passed: neither started nor ready.
    status = generate_status(p, state, StatusInputs({"proxy-0": True}, started={"proxy-0": False}))
    sidecar = status["initContainerStatuses"][0]
    assert sidecar["started"] is False and sidecar["ready"] is False
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Initialized"]["status"] == "False"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [proxy]"
    assert conditions["ContainersReady"]["message"] == "containers with unready status: [proxy web]"
    assert status["phase"] == "Pending"
    validate(_full(p, status))


def test_a_started_sidecar_initializes_the_pod() -> None:
    p = _sidecar_pod()
    state = PodRuntimeState("uid", "fake", [_sandbox()], [_container("proxy", ContainerState.RUNNING)])
    status = generate_status(p, state, StatusInputs({"proxy-0": True}, started={"proxy-0": True}))
    assert status["initContainerStatuses"][0]["started"] is True
    assert {c["type"]: c["status"] for c in status["conditions"]}["Initialized"] == "True"
    # Not named in ``started``: a running container counts as started (no startup probe known).
    status = generate_status(p, state, StatusInputs({"proxy-0": True}))
    assert status["initContainerStatuses"][0]["started"] is True


def test_a_regular_container_not_yet_started_is_not_ready() -> None:
    p = pod("p", "n")
    state = PodRuntimeState("uid", "fake", [_sandbox()], [_container("web", ContainerState.RUNNING)])
    status = generate_status(p, state, StatusInputs({"web-0": True}, started={"web-0": False}))
    cs = status["containerStatuses"][0]
    assert cs["started"] is False and cs["ready"] is False
    assert status["phase"] == "Running"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ContainersReady"]["message"] == "containers with unready status: [web]"
    assert conditions["Ready"]["status"] == "False" and conditions["Initialized"]["status"] == "True"
