"""A Pod's API status, computed from what its runtime reports, the way the kubelet computes it.

``generate_status`` is the kubelet's ``generateAPIPodStatus``: container statuses from the newest container of
each name (the one before it gives ``lastState``), waiting reasons the pod worker recorded (CrashLoopBackOff,
ErrImagePull), the phase by ``getPhase``'s rules (init containers, sidecars, restart policies, terminal pods),
and the kubelet-owned conditions with kube's reasons and messages. It is a pure function: timestamps that
must survive from one status to the next (``lastTransitionTime``, ``startTime``) are the status manager's job,
so this module can be tested on plain records and used by every runtime.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .runtime.interface import ContainerState, ContainerStatus, PodSandboxStatus, SandboxState

JSON = dict[str, Any]
TERMINAL_PHASES = ("Succeeded", "Failed")
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def go_list(names: Iterable[str]) -> str:
    """Go's ``%s`` of a []string: ``[a b]``."""
    return "[" + " ".join(names) + "]"


def is_sidecar(container: JSON) -> bool:
    return container.get("restartPolicy") == "Always"


@dataclass
class PodRuntimeState:
    """What the runtime knows of one Pod (the kubelet's kubecontainer.PodStatus)."""

    uid: str
    runtime_name: str
    sandboxes: list[PodSandboxStatus] = field(default_factory=list)  # newest first
    containers: list[ContainerStatus] = field(default_factory=list)  # newest first

    def sandbox(self) -> PodSandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None

    def ready_sandbox(self) -> PodSandboxStatus | None:
        newest = self.sandbox()
        return newest if newest is not None and newest.state is SandboxState.READY else None

    def history(self, name: str) -> list[ContainerStatus]:
        return [c for c in self.containers if c.metadata.name == name]

    def latest(self, name: str) -> ContainerStatus | None:
        for c in self.containers:
            if c.metadata.name == name:
                return c
        return None

    def ips(self) -> list[str]:
        sandbox = self.ready_sandbox()
        if sandbox is None or not sandbox.ip:
            return []
        return [sandbox.ip, *sandbox.additional_ips]


@dataclass
class StatusInputs:
    """What the pod worker knows beyond the runtime: readiness and startup-probe verdicts per container id,
    waiting reasons by name.

    A running container is ``started`` unless ``started`` maps its id to False (its startup probe has not
    passed yet), and ``ready`` only when started and ``ready`` maps its id to True, as the kubelet's prober
    manager fills both in before the conditions are computed from them."""

    ready: Mapping[str, bool] = field(default_factory=dict)
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    host_ips: tuple[str, ...] = ()
    terminal: bool = False  # the Pod is being torn down: no container will start again
    started: Mapping[str, bool] = field(default_factory=dict)


def _state(c: ContainerStatus, runtime_name: str) -> JSON:
    if c.state is ContainerState.RUNNING:
        return {"running": {"startedAt": rfc3339(c.started_at)}}
    if c.state is ContainerState.EXITED:
        terminated: JSON = {"exitCode": c.exit_code, "reason": c.reason or ("Completed" if c.exit_code == 0
                                                                            else "Error"),
                            "startedAt": rfc3339(c.started_at or c.created_at),
                            "finishedAt": rfc3339(c.finished_at or c.created_at),
                            "containerID": f"{runtime_name}://{c.id}"}
        if c.message:
            terminated["message"] = c.message
        return {"terminated": terminated}
    return {"waiting": {}}


def _container_statuses(pod: JSON, specs: list[JSON], state: PodRuntimeState, old: list[JSON],
                        inputs: StatusInputs, *, init: bool) -> list[JSON]:
    has_init = bool(pod["spec"].get("initContainers"))
    default_reason = "PodInitializing" if has_init else "ContainerCreating"
    olds = {s.get("name"): s for s in old}
    out: list[JSON] = []
    for spec in specs:
        name = spec["name"]
        history = state.history(name)
        previous = olds.get(name)
        if history:
            newest = history[0]
            running = newest.state is ContainerState.RUNNING
            exited = newest.state is ContainerState.EXITED
            started = running and inputs.started.get(newest.id, True)
            ready = bool(inputs.ready.get(newest.id)) if started else (init and exited and newest.exit_code == 0
                                                                        and not is_sidecar(spec))
            status: JSON = {"name": name, "image": newest.image, "imageID": newest.image_ref,
                            "containerID": f"{state.runtime_name}://{newest.id}", "ready": ready,
                            "started": started, "restartCount": newest.metadata.attempt,
                            "state": _state(newest, state.runtime_name)}
            if len(history) > 1:
                status["lastState"] = _state(history[1], state.runtime_name)
            elif previous is not None and previous.get("restartCount") == newest.metadata.attempt:
                status["lastState"] = previous.get("lastState") or {}
            else:
                status["lastState"] = {}
        elif previous is not None and "terminated" in (previous.get("state") or {}):
            status = dict(previous)  # gone from the runtime: its last word stands
        else:
            status = {"name": name, "image": spec.get("image", ""), "imageID": "", "ready": False,
                      "started": False, "restartCount": 0, "state": {"waiting": {"reason": default_reason}},
                      "lastState": {}}
            if previous is not None:
                status["restartCount"] = previous.get("restartCount", 0)
                status["lastState"] = previous.get("lastState") or {}
        if inputs.terminal and "waiting" in status["state"]:
            status["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                              "message": "The container could not be located when the pod "
                                                         "was terminated"}}
            status["ready"] = False
            status["started"] = False
        reason = inputs.waiting.get(name)
        if reason is not None and not inputs.terminal:
            if "terminated" in status["state"]:
                status["lastState"] = status["state"]
            waiting: JSON = {"reason": reason[0]}
            if reason[1]:
                waiting["message"] = reason[1]
            status["state"] = {"waiting": waiting}
            status["ready"] = False
            status["started"] = False
        out.append(status)
    if not init:
        out.sort(key=lambda s: s["name"])
    return out


def _counts(statuses: Mapping[str, JSON], name: str) -> tuple[str, int, bool]:
    """(state, exit code, has a last termination) of one container status; state "" when unknown."""
    status = statuses.get(name)
    if status is None:
        return "", 0, False
    st = status.get("state") or {}
    last = "terminated" in (status.get("lastState") or {})
    if "running" in st:
        return "running", 0, last
    if "terminated" in st:
        return "terminated", int(st["terminated"].get("exitCode", 0)), last
    if "waiting" in st:
        last_code = int(status["lastState"]["terminated"].get("exitCode", 0)) if last else 0
        return "waiting", last_code, last
    return "", 0, last


def _regular_started(pod: JSON, statuses: Mapping[str, JSON]) -> bool:
    for c in pod["spec"].get("containers") or []:
        status = statuses.get(c["name"])
        if status is not None and ("running" in status["state"] or "terminated" in status["state"]):
            return True
    return False


def pod_phase(pod: JSON, statuses: Mapping[str, JSON], terminal: bool) -> str:
    """The kubelet's getPhase over container statuses by name (init and regular together)."""
    spec = pod["spec"]
    policy = spec.get("restartPolicy", "Always")
    pending_init = failed_init = 0
    unknown = running = waiting = stopped = succeeded = 0
    for c in spec.get("initContainers") or []:
        st, code, last = _counts(statuses, c["name"])
        sidecar = is_sidecar(c)
        if not sidecar:
            if st in ("", "running") or (st == "waiting" and not last):
                pending_init += 1
            elif st == "terminated" or (st == "waiting" and last):
                failed_init += 1 if code != 0 else 0
            continue
        if st == "running":
            if not statuses[c["name"]].get("started"):
                pending_init += 1
            running += 1
        elif st == "waiting" and not last:
            pending_init += 1
            waiting += 1
        elif st == "":
            pending_init += 1
            unknown += 1
    for c in spec.get("containers") or []:
        st, code, last = _counts(statuses, c["name"])
        if st == "running":
            running += 1
        elif st == "terminated":
            stopped += 1
            succeeded += 1 if code == 0 else 0
        elif st == "waiting":
            if last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if (pending_init > 0 and not _regular_started(pod, statuses)) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _condition(pod: JSON, type_: str, ok: bool, reason: str = "", message: str = "") -> JSON:
    cond: JSON = {"type": type_, "status": "True" if ok else "False"}
    generation = pod["metadata"].get("generation")
    if generation is not None:
        cond["observedGeneration"] = generation
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _containers_ready(pod: JSON, statuses: Mapping[str, JSON], phase: str) -> JSON:
    spec = pod["spec"]
    watched = [c["name"] for c in spec.get("initContainers") or [] if is_sidecar(c)]
    watched += [c["name"] for c in spec.get("containers") or []]
    unknown = [n for n in watched if n not in statuses]
    unready = [n for n in watched if n in statuses and not statuses[n].get("ready")]
    if (phase == "Succeeded" and not unknown) or phase == "Failed":
        return _condition(pod, "ContainersReady", False, "PodCompleted" if phase == "Succeeded" else "PodFailed")
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {go_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {go_list(unready)}")
    if messages:
        return _condition(pod, "ContainersReady", False, "ContainersNotReady", ", ".join(messages))
    return _condition(pod, "ContainersReady", True)


def _pod_ready(pod: JSON, containers_ready: JSON, conditions: list[JSON]) -> JSON:
    if containers_ready["status"] != "True":
        return _condition(pod, "Ready", False, containers_ready.get("reason", ""),
                          containers_ready.get("message", ""))
    messages = []
    by_type = {c.get("type"): c for c in conditions}
    for gate in pod["spec"].get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        found = by_type.get(kind)
        if found is None:
            messages.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif found.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{kind}" is not "True", but {found.get("status")}')
    if messages:
        return _condition(pod, "Ready", False, "ReadinessGatesNotReady", ", ".join(messages))
    return _condition(pod, "Ready", True)


def _initialized(pod: JSON, statuses: Mapping[str, JSON], phase: str) -> JSON:
    unknown: list[str] = []
    incomplete: list[str] = []
    for c in pod["spec"].get("initContainers") or []:
        status = statuses.get(c["name"])
        if status is None:
            unknown.append(c["name"])
        elif not (status.get("started") if is_sidecar(c) else status.get("ready")):
            incomplete.append(c["name"])
    if phase == "Succeeded" and not unknown:
        return _condition(pod, "Initialized", True, "PodCompleted")
    if _regular_started(pod, statuses):
        return _condition(pod, "Initialized", True)
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {go_list(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {go_list(incomplete)}")
    if messages:
        return _condition(pod, "Initialized", False, "ContainersNotInitialized", ", ".join(messages))
    return _condition(pod, "Initialized", True)


def generate_status(pod: JSON, state: PodRuntimeState, inputs: StatusInputs, previous: JSON | None = None) -> JSON:
    """The Pod's status as the kubelet would write it now (without lastTransitionTime and startTime).

    ``previous`` is the status this node wrote last (default: the Pod's): restart counts and last states of
    containers the runtime no longer has come from it. Conditions other nodes or controllers own (readiness
    gates, DisruptionTarget) are kept from the Pod as the API shows it."""
    spec = pod["spec"]
    api: JSON = pod.get("status") or {}
    old: JSON = previous if previous is not None else api
    init_statuses = _container_statuses(pod, spec.get("initContainers") or [], state,
                                        old.get("initContainerStatuses") or [], inputs, init=True)
    statuses = _container_statuses(pod, spec.get("containers") or [], state, old.get("containerStatuses") or [],
                                   inputs, init=False)
    by_name = {s["name"]: s for s in init_statuses}
    by_name.update((s["name"], s) for s in statuses)
    phase = pod_phase(pod, by_name, inputs.terminal)
    old_phase = old.get("phase")
    for seen in (old_phase, api.get("phase")):
        if phase not in TERMINAL_PHASES and seen in TERMINAL_PHASES:
            phase = seen  # pods never leave a terminal phase
    status: JSON = {"phase": phase}
    generation = pod["metadata"].get("generation")
    if generation is not None:
        status["observedGeneration"] = generation
    if phase == old_phase:
        for key in ("reason", "message"):
            if old.get(key):
                status[key] = old[key]
    foreign = [c for c in api.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
    containers_ready = _containers_ready(pod, by_name, phase)
    status["conditions"] = [
        *foreign,
        _condition(pod, "PodReadyToStartContainers", state.ready_sandbox() is not None),
        _initialized(pod, by_name, phase),
        _pod_ready(pod, containers_ready, foreign),
        containers_ready,
        _condition(pod, "PodScheduled", True),
    ]
    if inputs.host_ips:
        status["hostIP"] = inputs.host_ips[0]
        status["hostIPs"] = [{"ip": ip} for ip in inputs.host_ips]
    ips = list(inputs.host_ips) if spec.get("hostNetwork") else state.ips()
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    elif old.get("podIP"):
        status["podIP"] = old["podIP"]  # a torn-down sandbox keeps its address in the record
        status["podIPs"] = old.get("podIPs") or [{"ip": old["podIP"]}]
    if api.get("qosClass"):
        status["qosClass"] = api["qosClass"]
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    return status
