"""syncPod: drive one node's runtime toward each Pod's spec and report what it sees.

``PodSyncer`` is the kubelet's sync logic for the Pods of one node, whatever the runtime: make a sandbox
(the Pod's IP), run init containers one at a time to completion (sidecars, restartable init containers, stay
up), then the regular containers; restart exited containers per ``restartPolicy`` with crash-loop back-off;
when the regular containers are done for good, stop sidecars and release the sandbox; when the Pod is being
deleted, stop everything within its grace period, write the terminal status and confirm the deletion.
Each call looks at the runtime afresh (level-triggered), so a sync can be repeated any time.

Status goes to the ``StatusManager``; Events (Pulling, Pulled, Created, Started, Killing, BackOff) to an
optional ``EventRecorder``. Given a ``ProbeManager`` (probes.py, the real agent), readiness and ``started`` come
from probes, and a container failing its liveness or startup probe is killed within its grace period and
restarted per ``restartPolicy`` with the usual back-off; without one, readiness comes from a ``Readiness`` hook
(the ``sim.nanokube.io/ready-after-seconds`` annotation on simulated nodes). Given a ``HookRunner`` (hooks.py),
postStart runs right after a container starts (a failure kills it: ``PostStartHookError``) and preStop before
it is signalled to stop, within its grace period.

What a container is configured with beyond image, command, args, literal env and tty is left to
``container_config``, which the real agent extends; given an ``EnvResolver`` (podenv.py) and a ``VolumeManager``
(volumes.py), env from ConfigMaps, Secrets and the downward API, and volume mounts, are added at container
creation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nanokube.client.events import EventRecorder

from .backoff import Backoff, go_duration
from .hooks import ContainerLifecycle, HookRunner, pod_ref
from .podenv import ContainerConfigFailure, EnvResolver, PodContext, expand
from .podfiles import pod_hostname
from .podstatus import (
    TERMINAL_PHASES,
    PodRuntimeState,
    StatusInputs,
    generate_status,
    is_sidecar,
)
from .probes import ProbeManager, container_specs, kill_grace
from .resources import linux_resources
from .runtime.interface import (
    CONTAINER_KIND_LABEL,
    CONTAINER_NAME_LABEL,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
    ContainerConfig,
    ContainerMetadata,
    ContainerState,
    ContainerStatus,
    ImagePullFailure,
    ImageSpec,
    PodSandboxConfig,
    PodSandboxMetadata,
    PortMapping,
    Runtime,
    RuntimeFailure,
    SandboxState,
)
from .status import StatusManager
from .volumes import VolumeManager, VolumeMountFailure

log = logging.getLogger(__name__)
JSON = dict[str, Any]
# (pod, container spec, its running status, now) -> (ready?, seconds until that may change or None)
Readiness = Callable[[JSON, JSON, ContainerStatus, float], tuple[bool, float | None]]


def always_ready(pod: JSON, spec: JSON, status: ContainerStatus, now: float) -> tuple[bool, float | None]:
    return True, None


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


@dataclass
class SyncSettings:
    node_name: str
    host_ips: tuple[str, ...]
    runtime_name: str = "fake"
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    image_backoff_initial: float = 1.0


@dataclass
class _Wake:
    at: float | None = None

    def soon(self, seconds: float) -> None:
        seconds = max(seconds, 0.01)
        self.at = seconds if self.at is None else min(self.at, seconds)


@dataclass
class _PodMemory:
    """What the syncer remembers of a Pod between syncs: waiting reasons by container name, and the ids of
    containers it killed for failing a liveness or startup probe (restarted whatever their exit code)."""

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    probe_killed: set[str] = field(default_factory=set)
    pull_failed: dict[str, float] = field(default_factory=dict)  # image -> when its last pull failed


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
        self.readiness = readiness
        self.clock = clock
        self.env = env  # given: env from ConfigMaps, Secrets and the downward API; else literal values only
        self.volumes = volumes  # given: volumeMounts become runtime mounts; else containers get none
        self.probes = probes  # given: probes decide readiness and restarts; else the readiness hook decides
        self.lifecycle = ContainerLifecycle(runtime, hooks, self._event, settings.host_ips)  # hooks, graceful stops
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max, clock)
        self._memory: dict[str, _PodMemory] = {}

    # -- entry points -------------------------------------------------------------------------------------
    async def sync(self, pod: JSON) -> float | None:
        """Bring the Pod one step closer to its spec; returns seconds until it wants another look."""
        if pod["metadata"].get("deletionTimestamp"):
            await self.terminate(pod)
            return None
        uid = pod["metadata"]["uid"]
        state = await self.runtime_state(uid)
        if self._terminal(pod):
            await self._kill(pod, state, 0)
            self._forget_probes(uid)
            return None
        wake = _Wake()
        if state.containers and state.ready_sandbox() is None and self._finished(pod, state):
            # Done for good (its sandbox already released): report, never start it again.
            self._forget_probes(uid)
            self.status.set_status(pod, self._generate(pod, state, wake, terminal=False))
            return None
        if await self._kill_unhealthy(pod, state):
            state = await self.runtime_state(uid)
        sandbox_id = await self._ensure_sandbox(pod, state, wake)
        if sandbox_id is not None:
            state = await self.runtime_state(uid)
            if await self._sync_init(pod, state, sandbox_id, wake):
                await self._sync_regular(pod, state, sandbox_id, wake)
            if self.volumes is not None:
                await self.volumes.refresh(pod)  # labels, annotations, ConfigMap data changed since the start
            state = await self.runtime_state(uid)
            if self._finished(pod, state):
                await self._kill(pod, state, _grace(pod))
                state = await self.runtime_state(uid)
        self._update_probes(pod, state)
        self.status.set_status(pod, self._generate(pod, state, wake, terminal=False))
        return wake.at

    async def terminate(self, pod: JSON) -> None:
        """The Pod is being deleted: stop it within its grace period, report it terminal, confirm deletion."""
        uid = pod["metadata"]["uid"]
        state = await self.runtime_state(uid)
        self._update_probes(pod, state)  # liveness and startup probes stop for a Pod shutting down
        await self._kill(pod, state, _grace(pod))
        state = await self.runtime_state(uid)
        self._update_probes(pod, state)
        self.status.set_status(pod, self._generate(pod, state, _Wake(), terminal=True), delete=True)

    async def cleanup(self, uid: str) -> None:
        """The Pod is gone from the API: remove what is left of it in the runtime and forget it."""
        for sandbox in await self.runtime.list_pod_sandboxes(uid):
            await self.runtime.remove_pod_sandbox(sandbox.id)
        if self.volumes is not None:
            await self.volumes.cleanup(uid)
        self._forget_probes(uid)
        self._memory.pop(uid, None)
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
    def _generate(self, pod: JSON, state: PodRuntimeState, wake: _Wake, *, terminal: bool) -> JSON:
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

    def _set_waiting(self, pod: JSON, name: str, reason: str, message: str) -> None:
        self._memory.setdefault(pod["metadata"]["uid"], _PodMemory()).waiting[name] = (reason, message)

    def _clear_waiting(self, pod: JSON, name: str) -> None:
        memory = self._memory.get(pod["metadata"]["uid"])
        if memory is not None:
            memory.waiting.pop(name, None)

    async def _event(self, pod: JSON, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            await self.recorder.event(pod, type_, reason, message)

    # -- sandbox ------------------------------------------------------------------------------------------
    def sandbox_config(self, pod: JSON, attempt: int) -> PodSandboxConfig:
        meta, spec = pod["metadata"], pod["spec"]
        labels = {**(meta.get("labels") or {}), POD_NAME_LABEL: meta["name"],
                  POD_NAMESPACE_LABEL: meta.get("namespace", ""), POD_UID_LABEL: meta["uid"]}
        ports = [PortMapping(int(p["containerPort"]), int(p.get("hostPort") or 0), p.get("protocol", "TCP"),
                             p.get("hostIP", ""))
                 for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("hostPort")]
        return PodSandboxConfig(
            PodSandboxMetadata(meta["name"], meta.get("namespace", ""), meta["uid"], attempt),
            hostname=pod_hostname(pod), host_network=bool(spec.get("hostNetwork")),
            labels=labels, annotations=dict(meta.get("annotations") or {}), port_mappings=ports,
            dns=self.volumes.dns_config(pod) if self.volumes is not None else None,
            log_directory=f"/var/log/pods/{meta.get('namespace', '')}_{meta['name']}_{meta['uid']}")

    async def _ensure_sandbox(self, pod: JSON, state: PodRuntimeState, wake: _Wake) -> str | None:
        ready = state.ready_sandbox()
        if ready is not None:
            return ready.id
        newest = state.sandbox()
        attempt = 0
        if newest is not None:
            attempt = newest.metadata.attempt + 1
            await self._event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            await self._kill(pod, state, 0)
        # Report ContainerCreating while the sandbox comes up (written unless it is up before the writer runs).
        self.status.set_status(pod, self._generate(pod, state, wake, terminal=False))
        try:
            return await self.runtime.run_pod_sandbox(self.sandbox_config(pod, attempt))
        except RuntimeFailure as err:
            await self._event(pod, "Warning", "FailedCreatePodSandBox",
                              f"Failed to create pod sandbox: {err}")
            wake.soon(self.settings.image_backoff_initial)
            return None

    # -- containers ---------------------------------------------------------------------------------------
    def container_config(self, pod: JSON, spec: JSON, kind: str, attempt: int) -> ContainerConfig:
        meta = pod["metadata"]
        labels = {POD_NAME_LABEL: meta["name"], POD_NAMESPACE_LABEL: meta.get("namespace", ""),
                  POD_UID_LABEL: meta["uid"], CONTAINER_NAME_LABEL: spec["name"], CONTAINER_KIND_LABEL: kind}
        envs = [(e["name"], str(e.get("value", ""))) for e in spec.get("env") or [] if "valueFrom" not in e]
        annotations = {"io.kubernetes.container.restartCount": str(attempt),
                       "io.kubernetes.container.terminationMessagePath":
                           spec.get("terminationMessagePath", "/dev/termination-log"),
                       "io.kubernetes.pod.terminationGracePeriod": str(_grace(pod))}
        return ContainerConfig(ContainerMetadata(spec["name"], attempt), spec.get("image", ""),
                               command=list(spec.get("command") or []), args=list(spec.get("args") or []),
                               working_dir=spec.get("workingDir", ""), envs=envs, labels=labels,
                               annotations=annotations, log_path=f"{spec['name']}/{attempt}.log",
                               stdin=bool(spec.get("stdin")), stdin_once=bool(spec.get("stdinOnce")),
                               tty=bool(spec.get("tty")), resources=linux_resources(spec))

    async def _full_config(self, pod: JSON, spec: JSON, kind: str, sandbox_id: str,
                           attempt: int) -> ContainerConfig:
        config = self.container_config(pod, spec, kind, attempt)
        sandbox = await self.runtime.pod_sandbox_status(sandbox_id)
        ips = [ip for ip in (sandbox.ip, *sandbox.additional_ips) if ip]
        if self.env is not None:
            config.envs = await self.env.resolve(pod, spec, PodContext(ips, self.settings.host_ips))
        # command and args see the container's environment as $(VAR), as the kubelet expands them
        variables = dict(config.envs)
        config.command = [expand(part, variables) for part in config.command]
        config.args = [expand(part, variables) for part in config.args]
        if self.volumes is not None:
            config.mounts = await self.volumes.mounts(pod, spec, ips)
        return config

    async def _pull(self, pod: JSON, spec: JSON) -> None:
        image = spec.get("image", "")
        policy = spec.get("imagePullPolicy") or "IfNotPresent"
        present = await self.runtime.image_status(ImageSpec(image)) is not None
        if policy == "Never" and not present:
            raise _NeverPull(f'Container image "{image}" is not present with pull policy of Never')
        if present and policy != "Always":
            await self._event(pod, "Normal", "Pulled",
                              f'Container image "{image}" already present on machine and can be accessed by the pod')
            return
        # As the kubelet's image manager: a failed pull backs off (10 s, doubling) per Pod and image.
        uid, key = pod["metadata"]["uid"], f"pull {image}"
        memory = self._memory.setdefault(uid, _PodMemory())
        if image in memory.pull_failed and self.backoff.in_backoff_since(uid, key, memory.pull_failed[image]):
            await self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"')
            raise _PullBackOff(f'Back-off pulling image "{image}"')
        await self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = self.clock()
        try:
            await self.runtime.pull_image(ImageSpec(image))
        except ImagePullFailure:
            memory.pull_failed[image] = self.clock()
            self.backoff.next(uid, key, memory.pull_failed[image])
            raise
        took = go_duration(round(self.clock() - started, 6))
        await self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {took} '
                                                   f"({took} including waiting)")

    async def _start(self, pod: JSON, spec: JSON, kind: str, sandbox_id: str, attempt: int, wake: _Wake) -> bool:
        name = spec["name"]
        try:
            await self._pull(pod, spec)
            config = await self._full_config(pod, spec, kind, sandbox_id, attempt)
            cid = await self.runtime.create_container(sandbox_id, config, self.sandbox_config(pod, 0))
            await self._event(pod, "Normal", "Created", f"Created container: {name}")
            await self.runtime.start_container(cid)
        except VolumeMountFailure as err:  # the kubelet's FailedMount: ContainerCreating until it can mount
            await self._event(pod, "Warning", "FailedMount", str(err))
            wake.soon(self.settings.image_backoff_initial)
            return False
        except RuntimeFailure as err:
            reason = err.reason
            if isinstance(err, ImagePullFailure):
                await self._event(pod, "Warning", "Failed", f'Failed to pull image "{spec.get("image")}": {err}')
            # As the kubelet: a configuration error's event carries its message, others their reason.
            shown = str(err) if isinstance(err, ContainerConfigFailure) else reason
            await self._event(pod, "Warning", "Failed", f"Error: {shown}")
            self._set_waiting(pod, name, reason, str(err))
            wake.soon(self.settings.image_backoff_initial)
            return False
        await self._event(pod, "Normal", "Started", f"Started container {name}")
        self._clear_waiting(pod, name)
        message = await self.lifecycle.post_start(pod, spec, cid, sandbox_id, _grace(pod))
        if message and (is_sidecar(spec) or pod["spec"].get("restartPolicy", "Always") != "Never"):
            self._set_waiting(pod, name, "PostStartHookError", message)  # until it restarts
        return not message

    async def _restart(self, pod: JSON, spec: JSON, kind: str, last: ContainerStatus, state: PodRuntimeState,
                       sandbox_id: str, wake: _Wake) -> bool:
        """Start a new attempt of an exited container unless it is in back-off; True when started."""
        uid, name = pod["metadata"]["uid"], spec["name"]
        if self.backoff.in_backoff_since(uid, name, last.finished_at):
            delay = self.backoff.get(uid, name)
            self._set_waiting(pod, name, "CrashLoopBackOff", f"back-off {go_duration(delay)} restarting failed "
                                                             f"container={name} pod={pod_ref(pod)}")
            await self._event(pod, "Warning", "BackOff",
                              f"Back-off restarting failed container {name} in pod {pod_ref(pod)}")
            wake.soon(last.finished_at + delay - self.clock())
            return False
        self.backoff.next(uid, name, last.finished_at)
        memory = self._memory.get(uid)
        for old in state.history(name):
            if old.id != last.id and old.state is ContainerState.EXITED:
                await self.runtime.remove_container(old.id)  # keep one dead container for lastState
                if memory is not None:
                    memory.probe_killed.discard(old.id)
        return await self._start(pod, spec, kind, sandbox_id, last.metadata.attempt + 1, wake)

    async def _sync_init(self, pod: JSON, state: PodRuntimeState, sandbox_id: str, wake: _Wake) -> bool:
        """Run init containers in order; True once every regular one has succeeded (sidecars started)."""
        policy = pod["spec"].get("restartPolicy", "Always")
        regular_started = any(state.latest(c["name"]) for c in pod["spec"].get("containers") or [])
        for spec in pod["spec"].get("initContainers") or []:
            last = state.latest(spec["name"])
            if is_sidecar(spec):
                if last is None:
                    if not await self._start(pod, spec, "sidecar", sandbox_id, 0, wake):
                        return False
                    if spec.get("startupProbe") and self.probes is not None:
                        return False  # the next one waits for its startup probe, whose success wakes us
                    continue
                if last.state is ContainerState.EXITED:
                    started = await self._restart(pod, spec, "sidecar", last, state, sandbox_id, wake)
                    if not started and not regular_started:
                        return False
                elif last.state is ContainerState.RUNNING and not regular_started and not self._started(pod, last):
                    return False  # its startup probe has not passed yet
                continue
            if last is None:
                await self._start(pod, spec, "init", sandbox_id, 0, wake)
                return False
            if last.state is not ContainerState.EXITED:
                return False  # still running: its exit will wake us
            if last.exit_code == 0:
                continue
            if policy != "Never":
                await self._restart(pod, spec, "init", last, state, sandbox_id, wake)
            return False
        return True

    async def _sync_regular(self, pod: JSON, state: PodRuntimeState, sandbox_id: str, wake: _Wake) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        for spec in pod["spec"].get("containers") or []:
            last = state.latest(spec["name"])
            if last is None:
                await self._start(pod, spec, "regular", sandbox_id, 0, wake)
            elif last.state is ContainerState.CREATED:
                await self.runtime.start_container(last.id)
            elif last.state is ContainerState.EXITED and self._should_restart(pod, policy, last):
                await self._restart(pod, spec, "regular", last, state, sandbox_id, wake)

    def _should_restart(self, pod: JSON, policy: str, last: ContainerStatus) -> bool:
        """Per ``restartPolicy``; a container killed for failing a probe restarts unless the policy is Never."""
        memory = self._memory.get(pod["metadata"]["uid"])
        if memory is not None and last.id in memory.probe_killed:
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

    async def _kill(self, pod: JSON, state: PodRuntimeState, grace: float) -> None:
        """Stop regular containers together (each within ``grace``, preStop hooks included), then sidecars in
        reverse order, then release the sandboxes."""
        order = {c["name"]: i for i, c in enumerate(pod["spec"].get("containers") or [])}
        sidecars = [c["name"] for c in pod["spec"].get("initContainers") or []]
        running = [c for c in state.containers if c.state in (ContainerState.RUNNING, ContainerState.CREATED)]
        running.sort(key=lambda c: (0, order.get(c.metadata.name, 0)) if c.metadata.name in order
                     else (1, -sidecars.index(c.metadata.name) if c.metadata.name in sidecars else 0))
        specs = {c["name"]: c for c in [*(pod["spec"].get("initContainers") or []),
                                        *(pod["spec"].get("containers") or [])]}
        for container in running:
            if container.state is ContainerState.RUNNING:
                await self._event(pod, "Normal", "Killing", f"Stopping container {container.metadata.name}")
        regular = [c for c in running if c.metadata.name in order]
        await asyncio.gather(*(self.lifecycle.stop(pod, specs.get(c.metadata.name), c, grace) for c in regular))
        for container in running[len(regular):]:
            await self.lifecycle.stop(pod, specs.get(container.metadata.name), container, grace)
        for sandbox in state.sandboxes:
            if sandbox.state is SandboxState.READY:
                await self.runtime.stop_pod_sandbox(sandbox.id)

    async def _kill_unhealthy(self, pod: JSON, state: PodRuntimeState) -> bool:
        """Kill the running containers that failed their liveness or startup probe; True if any was."""
        if self.probes is None:
            return False
        uid = pod["metadata"]["uid"]
        policy = pod["spec"].get("restartPolicy", "Always")
        specs = container_specs(pod)
        killed = False
        for container in state.containers:
            spec = specs.get(container.metadata.name)
            kind = self.probes.failed(uid, container.id) if container.state is ContainerState.RUNNING else None
            if spec is None or kind is None:
                continue
            message = f"Container {spec['name']} failed {kind.value.lower()} probe"
            if is_sidecar(spec) or policy != "Never":
                message += ", will be restarted"
            self._memory.setdefault(uid, _PodMemory()).probe_killed.add(container.id)
            await self._event(pod, "Normal", "Killing", message)
            await self.lifecycle.stop(pod, spec, container, kill_grace(spec, kind, _grace(pod)))
            killed = True
        return killed



class _NeverPull(RuntimeFailure):
    reason = "ErrImageNeverPull"


class _PullBackOff(RuntimeFailure):
    reason = "ImagePullBackOff"


def _grace(pod: JSON) -> int:
    meta, spec = pod["metadata"], pod["spec"]
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    return 30 if grace is None else int(grace)
