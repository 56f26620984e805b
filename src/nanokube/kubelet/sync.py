"""syncPod: drive one node's runtime toward each Pod's spec and report what it sees.

``PodSyncer`` is the kubelet's sync logic for the Pods of one node, whatever the runtime: make a sandbox
(the Pod's IP), run init containers one at a time to completion (sidecars, restartable init containers, stay
up), then the regular containers; restart exited containers per ``restartPolicy`` with crash-loop back-off;
when the regular containers are done for good, stop sidecars and release the sandbox; when the Pod is being
deleted, stop everything within its grace period, write the terminal status and confirm the deletion.
Each call looks at the runtime afresh (level-triggered), so a sync can be repeated any time.

Status goes to the ``StatusManager``; Events (Pulling, Pulled, Created, Started, Killing, BackOff) to an
optional ``EventRecorder``, written in the background (``BackgroundEvents``: a sync does not wait for them;
each Pod's stay in order; ``close`` writes what is queued). Given a ``ProbeManager`` (probes.py, the real agent), readiness and ``started`` come
from probes, and a container failing its liveness or startup probe is killed within its grace period and
restarted per ``restartPolicy`` with the usual back-off; without one, readiness comes from a ``Readiness`` hook
(the ``sim.nanokube.io/ready-after-seconds`` annotation on simulated nodes). Given a ``HookRunner`` (hooks.py),
postStart runs right after a container starts (a failure kills it: ``PostStartHookError``) and preStop before
it is signalled to stop, within its grace period.

What a container is configured with beyond image, command, args, literal env and tty is left to
``container_config``, which the real agent extends; given an ``EnvResolver`` (podenv.py) and a ``VolumeManager``
(volumes.py), env from ConfigMaps, Secrets and the downward API, and volume mounts, are added at container
creation.

This module decides whose turn it is (sandbox, init containers in order, sidecars, regular containers, when
the Pod is done) and writes the status; the container-level steps (pull, create and start with their Events,
crash-loop back-off, stopping in the kubelet's order, probe kills) are ``ContainerRunner``'s
(sync_containers.py), and what both remember of a Pod between syncs is in sync_state.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from nanokube.client.events import EventRecorder

from .backoff import Backoff
from .hooks import ContainerLifecycle, HookRunner
from .podenv import EnvResolver
from .podstatus import (
    TERMINAL_PHASES,
    PodRuntimeState,
    StatusInputs,
    generate_status,
    is_sidecar,
)
from .probes import ProbeManager, container_specs
from .runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    PodSandboxConfig,
    Runtime,
    RuntimeFailure,
)
from .status import StatusManager
from .sync_containers import ContainerRunner, base_container_config, base_sandbox_config
from .sync_state import BackgroundEvents, PodMemories, SyncSettings, Wake, pod_grace, should_restart
from .volumes import VolumeManager

__all__ = ["PodSyncer", "Readiness", "SyncSettings", "always_ready"]

log = logging.getLogger(__name__)
JSON = dict[str, Any]
# (pod, container spec, its running status, now) -> (ready?, seconds until that may change or None)
Readiness = Callable[[JSON, JSON, ContainerStatus, float], tuple[bool, float | None]]


def always_ready(pod: JSON, spec: JSON, status: ContainerStatus, now: float) -> tuple[bool, float | None]:
    return True, None


class PodSyncer:
    def __init__(self, settings: SyncSettings, runtime: Runtime, status: StatusManager, *,
                 recorder: EventRecorder | None = None, readiness: Readiness = always_ready,
                 clock: Callable[[], float] = time.time, env: EnvResolver | None = None,
                 volumes: VolumeManager | None = None, probes: ProbeManager | None = None,
                 hooks: HookRunner | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.status = status
        self.recorder = recorder
        # Events are queued and written beside the sync, each Pod's in order (``close`` writes what is left).
        self.events = BackgroundEvents(recorder) if recorder is not None else None
        self.readiness = readiness
        self.clock = clock
        self.env = env  # given: env from ConfigMaps, Secrets and the downward API; else literal values only
        self.volumes = volumes  # given: volumeMounts become runtime mounts; else containers get none
        self.probes = probes  # given: probes decide readiness and restarts; else the readiness hook decides
        self.lifecycle = ContainerLifecycle(runtime, hooks, self._event, settings.host_ips)  # hooks, graceful stops
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max, clock)
        self._memory = PodMemories()
        # pulls, starts, restarts and stops containers; asks this syncer for sandbox_config/container_config
        self.containers = ContainerRunner(settings, runtime, self, self._memory, self.backoff, self.lifecycle,
                                          self._event, clock, env=env, volumes=volumes)

    # -- entry points -------------------------------------------------------------------------------------
    async def sync(self, pod: JSON) -> float | None:
        """Bring the Pod one step closer to its spec; returns seconds until it wants another look."""
        if pod["metadata"].get("deletionTimestamp"):
            await self.terminate(pod)
            return None
        uid = pod["metadata"]["uid"]
        state = await self.runtime_state(uid)
        if self._terminal(pod):
            await self.containers.kill(pod, state, 0)
            self._forget_probes(uid)
            return None
        wake = Wake()
        if state.containers and state.ready_sandbox() is None and self._finished(pod, state):
            # Done for good (its sandbox already released): report, never start it again.
            self._forget_probes(uid)
            self.status.set_status(pod, self._generate(pod, state, wake, terminal=False))
            return None
        if self.probes is not None and await self.containers.kill_unhealthy(pod, state, self.probes):
            state = await self.runtime_state(uid)
        sandbox_id = await self._ensure_sandbox(pod, state, wake)
        if sandbox_id is not None:
            state = await self.runtime_state(uid)
            if await self._sync_init(pod, state, sandbox_id, wake):
                await self._sync_regular(pod, state, sandbox_id, wake)
            state = await self.runtime_state(uid)
            if self._finished(pod, state):
                await self.containers.kill(pod, state, pod_grace(pod))
                state = await self.runtime_state(uid)
        self._update_probes(pod, state)
        self.status.set_status(pod, self._generate(pod, state, wake, terminal=False))
        if sandbox_id is not None and self.volumes is not None:
            # Labels, annotations, ConfigMap data changed since the start: files only, so after the status
            # (a container started just now is reported without waiting for them).
            await self.volumes.refresh(pod)
        return wake.at

    async def terminate(self, pod: JSON) -> None:
        """The Pod is being deleted: stop it within its grace period, report it terminal, confirm deletion."""
        uid = pod["metadata"]["uid"]
        state = await self.runtime_state(uid)
        self._update_probes(pod, state)  # liveness and startup probes stop for a Pod shutting down
        await self.containers.kill(pod, state, pod_grace(pod))
        state = await self.runtime_state(uid)
        self._update_probes(pod, state)
        self.status.set_status(pod, self._generate(pod, state, Wake(), terminal=True), delete=True)

    async def cleanup(self, uid: str) -> None:
        """The Pod is gone from the API: remove what is left of it in the runtime and forget it."""
        for sandbox in await self.runtime.list_pod_sandboxes(uid):
            await self.runtime.remove_pod_sandbox(sandbox.id)
        if self.volumes is not None:
            await self.volumes.cleanup(uid)
        self._forget_probes(uid)
        self._memory.forget(uid)
        self.backoff.forget(uid)
        self.status.forget(uid)

    async def runtime_state(self, uid: str) -> PodRuntimeState:
        sandboxes = await self.runtime.list_pod_sandboxes(uid)
        sandboxes.sort(key=lambda s: (s.created_at, s.metadata.attempt), reverse=True)
        containers: list[ContainerStatus] = []
        for sandbox in sandboxes:
            containers.extend(await self.runtime.list_containers(sandbox.id))
        containers.sort(key=lambda c: (c.created_at, c.metadata.attempt), reverse=True)
        return PodRuntimeState(uid, self.settings.runtime_name, sandboxes, containers)

    def _terminal(self, pod: JSON) -> bool:
        """Succeeded or Failed, as the API shows it or as this node last reported it (maybe not yet seen)."""
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return True
        reported = self.status.cached(pod["metadata"]["uid"])
        return reported is not None and reported.get("phase") in TERMINAL_PHASES

    # -- status -------------------------------------------------------------------------------------------
    def _generate(self, pod: JSON, state: PodRuntimeState, wake: Wake, *, terminal: bool) -> JSON:
        now = self.clock()
        uid = pod["metadata"]["uid"]
        ready: dict[str, bool] = {}
        started: dict[str, bool] = {}
        specs = container_specs(pod)
        for container in state.containers:
            spec = specs.get(container.metadata.name)
            if spec is None or container.state is not ContainerState.RUNNING or container.id in ready:
                continue
            if self.probes is not None:
                started[container.id] = self.probes.started(uid, container.id)
                ready[container.id] = self.probes.ready(uid, container.id)
                continue
            ok, again = self.readiness(pod, spec, container, now)
            ready[container.id] = ok
            if again is not None:
                wake.soon(again)
        memory = self._memory.get(uid)
        inputs = StatusInputs(ready, memory.waiting if memory else {}, self.settings.host_ips, terminal, started)
        return generate_status(pod, state, inputs, self.status.cached(uid))

    def _update_probes(self, pod: JSON, state: PodRuntimeState) -> None:
        if self.probes is not None:
            self.probes.update(pod, state, self._pod_ip(pod, state))

    def _forget_probes(self, uid: str) -> None:
        if self.probes is not None:
            self.probes.forget(uid)

    def _pod_ip(self, pod: JSON, state: PodRuntimeState) -> str:
        if pod["spec"].get("hostNetwork"):
            return self.settings.host_ips[0] if self.settings.host_ips else ""
        ips = state.ips()
        return ips[0] if ips else ""

    async def _event(self, pod: JSON, type_: str, reason: str, message: str) -> None:
        if self.events is not None:
            await self.events.event(pod, type_, reason, message)

    async def flush_events(self) -> None:
        """Return once every Event recorded so far has been written."""
        if self.events is not None:
            await self.events.flush()

    async def close(self) -> None:
        """The agent is stopping: write the Events still queued (later ones are written as they come)."""
        if self.events is not None:
            await self.events.close()

    # -- sandbox and container configuration (the extension points) --------------------------------------
    def container_config(self, pod: JSON, spec: JSON, kind: str, attempt: int) -> ContainerConfig:
        """What a container is configured with before env sources and volumes are resolved: image, command,
        args, literal env, tty, resources. The extension point: ``ContainerRunner`` calls it at each start."""
        return base_container_config(pod, spec, kind, attempt)

    def sandbox_config(self, pod: JSON, attempt: int) -> PodSandboxConfig:
        """The Pod's sandbox as the runtime is asked to make it (overridable, as ``container_config``)."""
        return base_sandbox_config(pod, attempt, self.volumes.dns_config(pod) if self.volumes is not None else None)

    async def _ensure_sandbox(self, pod: JSON, state: PodRuntimeState, wake: Wake) -> str | None:
        ready = state.ready_sandbox()
        if ready is not None:
            return ready.id
        newest = state.sandbox()
        attempt = 0
        if newest is not None:
            attempt = newest.metadata.attempt + 1
            await self._event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            await self.containers.kill(pod, state, 0)
        # Report ContainerCreating while the sandbox comes up (written unless it is up before the writer runs).
        self.status.set_status(pod, self._generate(pod, state, wake, terminal=False))
        try:
            return await self.runtime.run_pod_sandbox(self.sandbox_config(pod, attempt))
        except RuntimeFailure as err:
            await self._event(pod, "Warning", "FailedCreatePodSandBox",
                              f"Failed to create pod sandbox: {err}")
            wake.soon(self.settings.image_backoff_initial)
            return None

    # -- whose turn it is ---------------------------------------------------------------------------------
    async def _sync_init(self, pod: JSON, state: PodRuntimeState, sandbox_id: str, wake: Wake) -> bool:
        """Run init containers in order; True once every regular one has succeeded (sidecars started)."""
        policy = pod["spec"].get("restartPolicy", "Always")
        regular_started = any(state.latest(c["name"]) for c in pod["spec"].get("containers") or [])
        for spec in pod["spec"].get("initContainers") or []:
            last = state.latest(spec["name"])
            if is_sidecar(spec):
                if last is None:
                    if not await self.containers.start(pod, spec, "sidecar", sandbox_id, 0, wake):
                        return False
                    if spec.get("startupProbe") and self.probes is not None:
                        return False  # the next one waits for its startup probe, whose success wakes us
                    continue
                if last.state is ContainerState.EXITED:
                    started = await self.containers.restart(pod, spec, "sidecar", last, state, sandbox_id, wake)
                    if not started and not regular_started:
                        return False
                elif last.state is ContainerState.RUNNING and not regular_started and not self._started(pod, last):
                    return False  # its startup probe has not passed yet
                continue
            if last is None:
                await self.containers.start(pod, spec, "init", sandbox_id, 0, wake)
                return False
            if last.state is not ContainerState.EXITED:
                return False  # still running: its exit will wake us
            if last.exit_code == 0:
                continue
            if policy != "Never":
                await self.containers.restart(pod, spec, "init", last, state, sandbox_id, wake)
            return False
        return True

    async def _sync_regular(self, pod: JSON, state: PodRuntimeState, sandbox_id: str, wake: Wake) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        for spec in pod["spec"].get("containers") or []:
            last = state.latest(spec["name"])
            if last is None:
                await self.containers.start(pod, spec, "regular", sandbox_id, 0, wake)
            elif last.state is ContainerState.CREATED:
                await self.runtime.start_container(last.id)
            elif last.state is ContainerState.EXITED and self._should_restart(pod, policy, last):
                await self.containers.restart(pod, spec, "regular", last, state, sandbox_id, wake)

    def _should_restart(self, pod: JSON, policy: str, last: ContainerStatus) -> bool:
        """Per ``restartPolicy``; a container killed for failing a probe restarts unless the policy is Never."""
        if self._memory.probe_killed(pod["metadata"]["uid"], last.id):
            return policy != "Never"
        return should_restart(policy, last.exit_code)

    def _started(self, pod: JSON, container: ContainerStatus) -> bool:
        """Running and past its startup probe (if it has one)."""
        if container.state is not ContainerState.RUNNING:
            return False
        return self.probes is None or self.probes.started(pod["metadata"]["uid"], container.id)

    def _finished(self, pod: JSON, state: PodRuntimeState) -> bool:
        """True when no container of the Pod will run again (all done, or an init container failed for good)."""
        spec = pod["spec"]
        policy = spec.get("restartPolicy", "Always")
        if policy == "Never":
            for c in spec.get("initContainers") or []:
                last = state.latest(c["name"])
                if not is_sidecar(c) and last is not None and last.state is ContainerState.EXITED \
                        and last.exit_code != 0:
                    return True
        for c in spec.get("containers") or []:
            last = state.latest(c["name"])
            if last is None or last.state is not ContainerState.EXITED or self._should_restart(pod, policy, last):
                return False
        return True
