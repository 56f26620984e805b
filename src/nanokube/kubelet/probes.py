"""Liveness, readiness and startup probes: one worker per running container and probe, as the kubelet's prober.

``ProbeManager`` is the kubelet's prober manager for one node. The syncer calls ``update(pod, state, pod_ip)``
after every sync: each running container with a probe gets a worker (an asyncio task), workers of containers
that stopped are dropped. A worker waits ``initialDelaySeconds`` from the container's start, then runs its probe
every ``periodSeconds`` (``actions.run_probe_action``), and turns runs of results into a verdict with
``successThreshold``/``failureThreshold``, exactly as ``prober/worker.go``: readiness starts out failing,
liveness passing, startup unknown; liveness and readiness are not probed until the startup probe has passed;
a failed liveness or startup verdict puts the worker on hold (the container is about to be killed, and its
replacement is a new container with a new worker).

Verdicts are read back by the syncer (``started``, ``ready``, ``failed``); whenever one changes the manager
calls ``wake(pod uid)`` so the Pod's worker syncs again: to write the new readiness, or to kill and restart an
unhealthy container. Each failed probe is an ``Unhealthy`` Event worded as the kubelet's (``Liveness probe
failed: ...``); a redirect elsewhere is a ``ProbeWarning``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nanokube.client.events import EventRecorder

from .actions import ActionError, ActionResult, Outcome, run_probe_action
from .podstatus import PodRuntimeState, is_sidecar
from .runtime.interface import ContainerState, ContainerStatus, Runtime, RuntimeFailure

log = logging.getLogger(__name__)
JSON = dict[str, Any]
Wake = Callable[[str], None]


class ProbeKind(StrEnum):
    LIVENESS = "Liveness"
    READINESS = "Readiness"
    STARTUP = "Startup"

    @property
    def field(self) -> str:
        return {"Liveness": "livenessProbe", "Readiness": "readinessProbe", "Startup": "startupProbe"}[self.value]


def probe_settings(probe: JSON) -> tuple[float, float, int, int]:
    """(initialDelaySeconds, periodSeconds, successThreshold, failureThreshold) with the API's defaults."""
    return (float(probe.get("initialDelaySeconds") or 0), float(probe.get("periodSeconds") or 10),
            int(probe.get("successThreshold") or 1), int(probe.get("failureThreshold") or 3))


def container_specs(pod: JSON) -> dict[str, JSON]:
    """Containers that can have probes: the regular ones and sidecars (restartable init containers)."""
    specs = {c["name"]: c for c in pod["spec"].get("containers") or []}
    specs.update((c["name"], c) for c in pod["spec"].get("initContainers") or [] if is_sidecar(c))
    return specs


@dataclass
class _Worker:
    uid: str
    container: ContainerStatus
    spec: JSON
    kind: ProbeKind
    probe: JSON
    result: bool | None  # the verdict: None until one is reached (startup), then True/False
    last: bool | None = None  # the last probe's result, and how many in a row gave it
    run: int = 0
    on_hold: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class _PodProbes:
    pod: JSON
    pod_ip: str = ""
    workers: dict[tuple[str, ProbeKind], _Worker] = field(default_factory=dict)  # (container id, kind)


class ProbeManager:
    def __init__(self, runtime: Runtime, *, wake: Wake | None = None, recorder: EventRecorder | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.wake: Wake = wake or (lambda uid: None)  # the agent's PodWorkers.update, usually
        self.recorder = recorder
        self.clock = clock
        self._pods: dict[str, _PodProbes] = {}

    # -- what the syncer calls ----------------------------------------------------------------------------
    def update(self, pod: JSON, state: PodRuntimeState, pod_ip: str) -> None:
        """Probe the running containers of ``pod`` as its spec asks; stop probing the others."""
        uid = pod["metadata"]["uid"]
        specs = container_specs(pod)
        entry = self._pods.get(uid)
        if entry is None:
            entry = self._pods[uid] = _PodProbes(pod)
        entry.pod, entry.pod_ip = pod, pod_ip
        wanted: set[tuple[str, ProbeKind]] = set()
        for container in state.containers:
            spec = specs.get(container.metadata.name)
            if spec is None or container.state is not ContainerState.RUNNING:
                continue
            for kind in ProbeKind:
                probe = spec.get(kind.field)
                if not probe:
                    continue
                key = (container.id, kind)
                wanted.add(key)
                if key not in entry.workers:
                    self._start(entry, _Worker(uid, container, spec, kind, probe, _initial(kind)))
        for key in [k for k in entry.workers if k not in wanted]:
            self._stop(entry.workers.pop(key))
        if not entry.workers:
            self._pods.pop(uid, None)

    def started(self, uid: str, container_id: str) -> bool:
        """False while the container's startup probe has not passed (True without one)."""
        worker = self._worker(uid, container_id, ProbeKind.STARTUP)
        return worker is None or worker.result is True

    def ready(self, uid: str, container_id: str) -> bool:
        """Started and, if it has a readiness probe, passing it."""
        if not self.started(uid, container_id):
            return False
        worker = self._worker(uid, container_id, ProbeKind.READINESS)
        return worker is None or worker.result is True

    def failed(self, uid: str, container_id: str) -> ProbeKind | None:
        """The probe whose failure means the container must be killed (liveness or startup), if any."""
        for kind in (ProbeKind.STARTUP, ProbeKind.LIVENESS):
            worker = self._worker(uid, container_id, kind)
            if worker is not None and worker.result is False:
                return kind
        return None

    def forget(self, uid: str) -> None:
        """The Pod is gone: stop its workers."""
        entry = self._pods.pop(uid, None)
        if entry is not None:
            for worker in entry.workers.values():
                self._stop(worker)

    async def close(self) -> None:
        """Stop every worker (the agent is shutting down)."""
        tasks = [w.task for e in self._pods.values() for w in e.workers.values() if w.task is not None]
        self._pods.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- workers ------------------------------------------------------------------------------------------
    def _worker(self, uid: str, container_id: str, kind: ProbeKind) -> _Worker | None:
        entry = self._pods.get(uid)
        return entry.workers.get((container_id, kind)) if entry is not None else None

    def _start(self, entry: _PodProbes, worker: _Worker) -> None:
        entry.workers[(worker.container.id, worker.kind)] = worker
        name = f"probe {worker.kind.value.lower()} {worker.uid}/{worker.spec['name']}"
        worker.task = asyncio.get_running_loop().create_task(self._run(entry, worker), name=name)

    @staticmethod
    def _stop(worker: _Worker) -> None:
        if worker.task is not None:
            worker.task.cancel()

    async def _run(self, entry: _PodProbes, worker: _Worker) -> None:
        delay, period, _, _ = probe_settings(worker.probe)
        first = worker.container.started_at + delay - self.clock()
        if first > 0:
            await asyncio.sleep(first)
        while not worker.on_hold:
            try:
                await self._probe_once(entry, worker)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("probe of %s failed unexpectedly", worker.spec.get("name"))
            if worker.on_hold:
                return
            await asyncio.sleep(period)

    def _gated(self, worker: _Worker) -> bool:
        """Liveness and readiness wait for the startup probe; the startup probe stops once it has passed."""
        started = self.started(worker.uid, worker.container.id)
        return started if worker.kind is ProbeKind.STARTUP else not started

    async def _probe_once(self, entry: _PodProbes, worker: _Worker) -> None:
        if entry.pod["metadata"].get("deletionTimestamp") and worker.kind is not ProbeKind.READINESS:
            worker.on_hold = True  # a Pod shutting down is not restarted for failing liveness
            return
        if self._gated(worker) or not await self._running(worker):
            return
        try:
            result = await run_probe_action(self.runtime, worker.probe, worker.spec, worker.container.id,
                                            entry.pod_ip)
        except (ActionError, RuntimeFailure) as err:
            await self._event(entry.pod, worker, "Unhealthy",
                              f"{worker.kind.value} probe errored and resulted in failure state: {err}")
            return  # an errored probe leaves the verdict as it was
        await self._record(entry.pod, worker, result)
        self._count(worker, result.ok)

    async def _running(self, worker: _Worker) -> bool:
        """Whether the container still runs (an exited one is not probed; the next sync drops its worker)."""
        try:
            status = await self.runtime.container_status(worker.container.id)
        except RuntimeFailure:
            return False
        return status.state is ContainerState.RUNNING

    async def _record(self, pod: JSON, worker: _Worker, result: ActionResult) -> None:
        if result.outcome is Outcome.WARNING:
            await self._event(pod, worker, "ProbeWarning", f"{worker.kind.value} probe warning: {result.output}")
        elif not result.ok:
            await self._event(pod, worker, "Unhealthy", f"{worker.kind.value} probe failed: {result.output}")

    def _count(self, worker: _Worker, ok: bool) -> None:
        """Apply the thresholds: the verdict changes only after enough results in a row."""
        _, _, success_threshold, failure_threshold = probe_settings(worker.probe)
        worker.run = worker.run + 1 if worker.last == ok else 1
        worker.last = ok
        if worker.run < (success_threshold if ok else failure_threshold):
            return
        changed = worker.result != ok
        worker.result = ok
        if not ok and worker.kind is not ProbeKind.READINESS:
            worker.on_hold = True  # the container will be killed; its replacement gets a new worker
            worker.run = 0
        if changed:
            self.wake(worker.uid)

    async def _event(self, pod: JSON, worker: _Worker, reason: str, message: str) -> None:
        log.info("pod %s/%s container %s: %s", pod["metadata"].get("namespace"), pod["metadata"].get("name"),
                 worker.spec.get("name"), message)
        if self.recorder is not None:
            await self.recorder.event(pod, "Warning", reason, message)


def kill_grace(spec: JSON, kind: ProbeKind, pod_grace: int) -> int:
    """Seconds a container killed for failing ``kind`` gets: the probe's ``terminationGracePeriodSeconds``, else
    the Pod's."""
    grace = (spec.get(kind.field) or {}).get("terminationGracePeriodSeconds")
    return pod_grace if grace is None else int(grace)


def _initial(kind: ProbeKind) -> bool | None:
    """The verdict before any probe ran: readiness failing, liveness passing, startup unknown."""
    return {ProbeKind.READINESS: False, ProbeKind.LIVENESS: True, ProbeKind.STARTUP: None}[kind]
