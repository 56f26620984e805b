"""The Pod row: kubectl's READY, STATUS and RESTARTS, worked out exactly as ``printPod`` does.

STATUS is the most-read cell in Kubernetes and its rules are order-dependent: the phase (or ``status.reason``),
overridden by a scheduling gate, then by the first init container that has not finished (``Init:N/M``,
``Init:<reason>``, ``Init:ExitCode:N``), then by the last regular container with a waiting or terminated reason
(``CrashLoopBackOff``, ``Completed``, ``Error``, ``Signal:N``), back to ``Running``/``NotReady`` when a container
still runs after another completed, and finally ``Terminating``/``Unknown`` for a pod being deleted. Restartable
init containers (sidecars, ``restartPolicy: Always``) count towards READY and, once the pod is initialized,
their restarts are the only init restarts shown. The walk is kept as one state object so each rule reads like
the Go code it reproduces; none of that code is copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nanokube.api.tables.common import (
    AGE,
    JSON,
    NAME,
    NONE,
    Column,
    Context,
    Printer,
    age,
    dig,
    first_true,
    human_duration,
    items,
    name_of,
    number,
    parse_time,
    text,
    wide,
)

NODE_LOST = "NodeLost"  # node.NodeUnreachablePodReason
_TERMINAL = ("Succeeded", "Failed")

COLUMNS = (
    NAME,
    Column("Ready", doc="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", doc="The aggregate status of the containers in this pod."),
    Column("Restarts", doc="The number of times the containers in this pod have been restarted and when the "
                           "last container in this pod has restarted."),
    AGE,
    wide("IP", ("io.k8s.api.core.v1.PodStatus", "podIP")),
    wide("Node", ("io.k8s.api.core.v1.PodSpec", "nodeName")),
    wide("Nominated Node", ("io.k8s.api.core.v1.PodStatus", "nominatedNodeName")),
    wide("Readiness Gates", ("io.k8s.api.core.v1.PodSpec", "readinessGates")),
)


@dataclass
class _Walk:
    """The running totals of the status walk."""

    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None
    initializing: bool = False


def _later(current: datetime | None, status: Mapping[str, Any]) -> datetime | None:
    finished = parse_time(dig(status, "lastState", "terminated", "finishedAt"))
    if finished is not None and (current is None or current < finished):
        return finished
    return current


def _is_sidecar(spec: Any) -> bool:
    return isinstance(spec, Mapping) and spec.get("restartPolicy") == "Always"


def _terminated_reason(terminated: Mapping[str, Any]) -> str:
    """A terminated state's reason, or ``Signal:N``/``ExitCode:N`` when it has none."""
    if terminated.get("reason"):
        return str(terminated["reason"])
    if number(terminated, "signal"):
        return f"Signal:{number(terminated, 'signal')}"
    return f"ExitCode:{number(terminated, 'exitCode')}"


def _walk_init(pod: JSON, walk: _Walk) -> None:
    specs = {text(c, "name"): c for c in items(pod, "spec", "initContainers") if isinstance(c, Mapping)}
    count = len(items(pod, "spec", "initContainers"))
    for index, status in enumerate(items(pod, "status", "initContainerStatuses")):
        if not isinstance(status, Mapping):
            continue
        sidecar = _is_sidecar(specs.get(text(status, "name")))
        walk.restarts += number(status, "restartCount")
        walk.last_restart = _later(walk.last_restart, status)
        if sidecar:
            walk.sidecar_restarts += number(status, "restartCount")
            walk.sidecar_last_restart = _later(walk.sidecar_last_restart, status)
        terminated = dig(status, "state", "terminated")
        waiting_reason = text(status, "state", "waiting", "reason")
        if isinstance(terminated, Mapping) and number(terminated, "exitCode") == 0:
            continue
        if sidecar and status.get("started") is True:
            walk.ready += 1 if status.get("ready") is True else 0
            continue
        if isinstance(terminated, Mapping):
            walk.reason = "Init:" + _terminated_reason(terminated)
        elif waiting_reason and waiting_reason != "PodInitializing":
            walk.reason = "Init:" + waiting_reason
        else:
            walk.reason = f"Init:{index}/{count}"
        walk.initializing = True
        break


def _walk_containers(pod: JSON, walk: _Walk) -> None:
    walk.restarts = walk.sidecar_restarts
    walk.last_restart = walk.sidecar_last_restart
    running = False
    for status in reversed(items(pod, "status", "containerStatuses")):
        if not isinstance(status, Mapping):
            continue
        walk.restarts += number(status, "restartCount")
        walk.last_restart = _later(walk.last_restart, status)
        waiting_reason = text(status, "state", "waiting", "reason")
        terminated = dig(status, "state", "terminated")
        if waiting_reason:
            walk.reason = waiting_reason
        elif isinstance(terminated, Mapping):
            walk.reason = _terminated_reason(terminated)
        elif status.get("ready") is True and isinstance(dig(status, "state", "running"), Mapping):
            running = True
            walk.ready += 1
    if walk.reason == "Completed" and running:
        walk.reason = "Running" if first_true(items(pod, "status", "conditions"), "Ready") else "NotReady"


def _initial_reason(pod: JSON) -> str:
    reason = text(pod, "status", "reason") or text(pod, "status", "phase")
    for cond in items(pod, "status", "conditions"):
        if isinstance(cond, Mapping) and cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    return reason


def pod_walk(pod: JSON) -> _Walk:
    """READY counts, STATUS reason and restart totals of one pod."""
    walk = _Walk(reason=_initial_reason(pod))
    walk.total = len(items(pod, "spec", "containers")) + sum(
        1 for c in items(pod, "spec", "initContainers") if _is_sidecar(c))
    _walk_init(pod, walk)
    if not walk.initializing or first_true(items(pod, "status", "conditions"), "Initialized"):
        _walk_containers(pod, walk)
    deleting = dig(pod, "metadata", "deletionTimestamp") is not None
    if deleting and text(pod, "status", "reason") == NODE_LOST:
        walk.reason = "Unknown"
    elif deleting and text(pod, "status", "phase") not in _TERMINAL:
        walk.reason = "Terminating"
    return walk


def pod_status(pod: JSON) -> str:
    """The STATUS column kubectl shows for a pod."""
    return pod_walk(pod).reason


def _restarts(walk: _Walk, now: datetime) -> str:
    if walk.restarts != 0 and walk.last_restart is not None:
        return f"{walk.restarts} ({human_duration(now - walk.last_restart)} ago)"
    return str(walk.restarts)


def _pod_ip(pod: JSON) -> str:
    ips = items(pod, "status", "podIPs")
    ip = text(ips[0], "ip") if ips else text(pod, "status", "podIP")
    return ip or NONE


def _readiness_gates(pod: JSON) -> str:
    gates = [g for g in items(pod, "spec", "readinessGates") if isinstance(g, Mapping)]
    if not gates:
        return NONE
    conditions = items(pod, "status", "conditions")
    passed = sum(1 for g in gates if first_true(conditions, text(g, "conditionType")))
    return f"{passed}/{len(gates)}"


def pod_cells(pod: JSON, ctx: Context) -> list[Any]:
    walk = pod_walk(pod)
    return [
        name_of(pod), f"{walk.ready}/{walk.total}", walk.reason, _restarts(walk, ctx.now), age(pod, ctx),
        _pod_ip(pod), text(pod, "spec", "nodeName") or NONE, text(pod, "status", "nominatedNodeName") or NONE,
        _readiness_gates(pod),
    ]


def pod_conditions(pod: JSON) -> list[JSON]:
    phase = text(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


POD = Printer(COLUMNS, pod_cells, conditions=pod_conditions)
