"""Container start, restart and stop for the Pod syncer: the kubelet's startContainer, its crash-loop back-off and
killPodWithSyncResult, apart from the Pod-level decisions of which container's turn it is (sync.py).

``ContainerRunner`` pulls an image as ``imagePullPolicy`` says (a failed pull backs off per Pod and image),
builds the container's configuration, creates and starts it with the kubelet's Events (Pulling, Pulled,
Created, Started, Failed, BackOff) and runs its postStart hook; it starts a new attempt of an exited container
unless it is in crash-loop back-off; it stops a Pod's containers in the kubelet's order, and kills the ones a
liveness or startup probe failed. A failure to start is not raised: the container is left waiting with the
failure's reason (in ``PodMemories``) and the sync asks to be woken to try again.

The base configuration of a sandbox and a container comes from a ``ConfigSource``, the ``PodSyncer`` itself,
looked up at each start so that a subclass's ``sandbox_config``/``container_config`` is what gets used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from .backoff import Backoff, go_duration
from .hooks import ContainerLifecycle, EventFn, pod_ref
from .podenv import ContainerConfigFailure, EnvResolver, PodContext, expand
from .podfiles import pod_hostname
from .podstatus import PodRuntimeState, is_sidecar
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
    DNSConfig,
    ImagePullFailure,
    ImageSpec,
    PodSandboxConfig,
    PodSandboxMetadata,
    PortMapping,
    Runtime,
    RuntimeFailure,
    SandboxState,
)
from .sync_state import PodMemories, SyncSettings, Wake, pod_grace
from .volumes import VolumeManager, VolumeMountFailure

JSON = dict[str, Any]


class ConfigSource(Protocol):
    def sandbox_config(self, pod: JSON, attempt: int) -> PodSandboxConfig: ...

    def container_config(self, pod: JSON, spec: JSON, kind: str, attempt: int) -> ContainerConfig: ...


class NeverPull(RuntimeFailure):
    reason = "ErrImageNeverPull"


class PullBackOff(RuntimeFailure):
    reason = "ImagePullBackOff"


def base_sandbox_config(pod: JSON, attempt: int, dns: DNSConfig | None) -> PodSandboxConfig:
    """The Pod's sandbox: its labels and identity, hostname, host ports, DNS and log directory."""
    meta, spec = pod["metadata"], pod["spec"]
    labels = {**(meta.get("labels") or {}), POD_NAME_LABEL: meta["name"],
              POD_NAMESPACE_LABEL: meta.get("namespace", ""), POD_UID_LABEL: meta["uid"]}
    ports = [PortMapping(int(p["containerPort"]), int(p.get("hostPort") or 0), p.get("protocol", "TCP"),
                         p.get("hostIP", ""))
             for c in spec.get("containers") or [] for p in c.get("ports") or [] if p.get("hostPort")]
    return PodSandboxConfig(
        PodSandboxMetadata(meta["name"], meta.get("namespace", ""), meta["uid"], attempt),
        hostname=pod_hostname(pod), host_network=bool(spec.get("hostNetwork")),
        labels=labels, annotations=dict(meta.get("annotations") or {}), port_mappings=ports, dns=dns,
        log_directory=f"/var/log/pods/{meta.get('namespace', '')}_{meta['name']}_{meta['uid']}")


def base_container_config(pod: JSON, spec: JSON, kind: str, attempt: int) -> ContainerConfig:
    """A container from its spec alone: image, command, args, literal env, tty, resources, kubelet labels."""
    meta = pod["metadata"]
    labels = {POD_NAME_LABEL: meta["name"], POD_NAMESPACE_LABEL: meta.get("namespace", ""),
              POD_UID_LABEL: meta["uid"], CONTAINER_NAME_LABEL: spec["name"], CONTAINER_KIND_LABEL: kind}
    envs = [(e["name"], str(e.get("value", ""))) for e in spec.get("env") or [] if "valueFrom" not in e]
    annotations = {"io.kubernetes.container.restartCount": str(attempt),
                   "io.kubernetes.container.terminationMessagePath":
                       spec.get("terminationMessagePath", "/dev/termination-log"),
                   "io.kubernetes.pod.terminationGracePeriod": str(pod_grace(pod))}
    return ContainerConfig(ContainerMetadata(spec["name"], attempt), spec.get("image", ""),
                           command=list(spec.get("command") or []), args=list(spec.get("args") or []),
                           working_dir=spec.get("workingDir", ""), envs=envs, labels=labels,
                           annotations=annotations, log_path=f"{spec['name']}/{attempt}.log",
                           stdin=bool(spec.get("stdin")), stdin_once=bool(spec.get("stdinOnce")),
                           tty=bool(spec.get("tty")), resources=linux_resources(spec))


class ContainerRunner:
    def __init__(self, settings: SyncSettings, runtime: Runtime, configs: ConfigSource, memory: PodMemories,
                 backoff: Backoff, lifecycle: ContainerLifecycle, event: EventFn, clock: Callable[[], float], *,
                 env: EnvResolver | None = None, volumes: VolumeManager | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.configs = configs
        self.memory = memory
        self.backoff = backoff
        self.lifecycle = lifecycle
        self.event = event
        self.clock = clock
        self.env = env
        self.volumes = volumes

    # -- start --------------------------------------------------------------------------------------------
    async def start(self, pod: JSON, spec: JSON, kind: str, sandbox_id: str, attempt: int, wake: Wake) -> bool:
        """Pull, create and start attempt ``attempt`` of the container, then run its postStart hook; True when
        it runs. On failure the container waits with the failure's reason and ``wake`` asks for a retry."""
        name = spec["name"]
        try:
            await self._pull(pod, spec)
            config = await self._full_config(pod, spec, kind, sandbox_id, attempt)
            cid = await self.runtime.create_container(sandbox_id, config, self.configs.sandbox_config(pod, 0))
            await self.event(pod, "Normal", "Created", f"Created container: {name}")
            await self.runtime.start_container(cid)
        except VolumeMountFailure as err:  # the kubelet's FailedMount: ContainerCreating until it can mount
            await self.event(pod, "Warning", "FailedMount", str(err))
            wake.soon(self.settings.image_backoff_initial)
            return False
        except RuntimeFailure as err:
            reason = err.reason
            if isinstance(err, ImagePullFailure):
                await self.event(pod, "Warning", "Failed", f'Failed to pull image "{spec.get("image")}": {err}')
            # As the kubelet: a configuration error's event carries its message, others their reason.
            shown = str(err) if isinstance(err, ContainerConfigFailure) else reason
            await self.event(pod, "Warning", "Failed", f"Error: {shown}")
            self.memory.set_waiting(pod, name, reason, str(err))
            wake.soon(self.settings.image_backoff_initial)
            return False
        await self.event(pod, "Normal", "Started", f"Started container {name}")
        self.memory.clear_waiting(pod, name)
        message = await self.lifecycle.post_start(pod, spec, cid, sandbox_id, pod_grace(pod))
        if message and (is_sidecar(spec) or pod["spec"].get("restartPolicy", "Always") != "Never"):
            self.memory.set_waiting(pod, name, "PostStartHookError", message)  # until it restarts
        return not message

    async def restart(self, pod: JSON, spec: JSON, kind: str, last: ContainerStatus, state: PodRuntimeState,
                      sandbox_id: str, wake: Wake) -> bool:
        """Start a new attempt of an exited container unless it is in back-off; True when started."""
        uid, name = pod["metadata"]["uid"], spec["name"]
        if self.backoff.in_backoff_since(uid, name, last.finished_at):
            delay = self.backoff.get(uid, name)
            self.memory.set_waiting(pod, name, "CrashLoopBackOff", f"back-off {go_duration(delay)} restarting "
                                                                   f"failed container={name} pod={pod_ref(pod)}")
            await self.event(pod, "Warning", "BackOff",
                             f"Back-off restarting failed container {name} in pod {pod_ref(pod)}")
            wake.soon(last.finished_at + delay - self.clock())
            return False
        self.backoff.next(uid, name, last.finished_at)
        memory = self.memory.get(uid)
        for old in state.history(name):
            if old.id != last.id and old.state is ContainerState.EXITED:
                await self.runtime.remove_container(old.id)  # keep one dead container for lastState
                if memory is not None:
                    memory.probe_killed.discard(old.id)
        return await self.start(pod, spec, kind, sandbox_id, last.metadata.attempt + 1, wake)

    async def _full_config(self, pod: JSON, spec: JSON, kind: str, sandbox_id: str,
                           attempt: int) -> ContainerConfig:
        config = self.configs.container_config(pod, spec, kind, attempt)
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
            raise NeverPull(f'Container image "{image}" is not present with pull policy of Never')
        if present and policy != "Always":
            await self.event(pod, "Normal", "Pulled",
                             f'Container image "{image}" already present on machine and can be accessed by the pod')
            return
        # As the kubelet's image manager: a failed pull backs off (10 s, doubling) per Pod and image.
        uid, key = pod["metadata"]["uid"], f"pull {image}"
        memory = self.memory.of(uid)
        if image in memory.pull_failed and self.backoff.in_backoff_since(uid, key, memory.pull_failed[image]):
            await self.event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"')
            raise PullBackOff(f'Back-off pulling image "{image}"')
        await self.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = self.clock()
        try:
            await self.runtime.pull_image(ImageSpec(image))
        except ImagePullFailure:
            memory.pull_failed[image] = self.clock()
            self.backoff.next(uid, key, memory.pull_failed[image])
            raise
        took = go_duration(round(self.clock() - started, 6))
        await self.event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {took} '
                                                  f"({took} including waiting)")

    # -- stop ---------------------------------------------------------------------------------------------
    async def kill(self, pod: JSON, state: PodRuntimeState, grace: float) -> None:
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
                await self.event(pod, "Normal", "Killing", f"Stopping container {container.metadata.name}")
        regular = [c for c in running if c.metadata.name in order]
        await asyncio.gather(*(self.lifecycle.stop(pod, specs.get(c.metadata.name), c, grace) for c in regular))
        for container in running[len(regular):]:
            await self.lifecycle.stop(pod, specs.get(container.metadata.name), container, grace)
        for sandbox in state.sandboxes:
            if sandbox.state is SandboxState.READY:
                await self.runtime.stop_pod_sandbox(sandbox.id)

    async def kill_unhealthy(self, pod: JSON, state: PodRuntimeState, probes: ProbeManager) -> bool:
        """Kill the running containers that failed their liveness or startup probe; True if any was. Each is
        remembered as probe-killed: it restarts unless the policy is Never, whatever its exit code."""
        uid = pod["metadata"]["uid"]
        policy = pod["spec"].get("restartPolicy", "Always")
        specs = container_specs(pod)
        killed = False
        for container in state.containers:
            spec = specs.get(container.metadata.name)
            kind = probes.failed(uid, container.id) if container.state is ContainerState.RUNNING else None
            if spec is None or kind is None:
                continue
            message = f"Container {spec['name']} failed {kind.value.lower()} probe"
            if is_sidecar(spec) or policy != "Never":
                message += ", will be restarted"
            self.memory.of(uid).probe_killed.add(container.id)
            await self.event(pod, "Normal", "Killing", message)
            await self.lifecycle.stop(pod, spec, container, kill_grace(spec, kind, pod_grace(pod)))
            killed = True
        return killed
