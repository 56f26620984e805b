"""The fake runtime: sandboxes and containers that exist only as records, for simulated nodes and tests.

Nothing runs. A sandbox takes ``sandbox_delay`` seconds to "set up" (the ContainerCreating phase a user sees)
and gets an IP from the node's pod CIDR; a container "runs" from ``start_container`` until its plan says it
exits, or forever; exits are timers on the event loop, reported to subscribers as CRI container events, so
thousands of Pods cost no tasks and no processes. How a container behaves comes from its Pod's annotations
(``annotation_plan``), documented here because users write them:

* ``sim.nanokube.io/run-seconds: "5"`` — regular containers exit after 5 s (absent: they run until stopped,
  like a web server). Init containers always exit at once with code 0 unless told otherwise per container.
* ``sim.nanokube.io/exit-code: "1"`` — the code they exit with (default 0). A non-zero code means ``Error``.
* ``sim.nanokube.io/run-seconds.<container>`` and ``sim.nanokube.io/exit-code.<container>`` — the same for
  one named container (init containers included), overriding the Pod-wide values.

* ``sim.nanokube.io/log: "text"`` (or ``...log.<container>``) — lines the container "prints" when it starts;
  its log also has a line when it starts and one when it exits, and ``follow`` ends when it exits.
* ``sim.nanokube.io/port-forward-to: "127.0.0.1:8080"`` (or ``...port-forward-to.<port>``) — where a
  port-forward into the Pod connects (loopback addresses only); without it nothing listens in the Pod.

Exec and attach run the built-in commands of ``runtime.fakeexec`` (``echo``, ``cat``, ``sh -c``, ``exit N``...).
A graceful stop ends a container with ``term_exit_code`` (0: the process handled SIGTERM), a stop with no
grace with 137 (SIGKILL). Pulls succeed for every image, after ``pull_delay``; images are then "present".
One ``FakeRuntime`` serves one node. It keeps the label and annotation dicts of the configs it is given (no
copies: ten thousand Pods' worth of them add up), so callers hand over fresh ones.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from .fakeio import ExitWaiters, connect_loopback, log_line, log_lines, select_lines
from .fakestreams import start_attach, start_exec
from .interface import (
    CONTAINER_KIND_LABEL,
    CONTAINER_NAME_LABEL,
    POD_UID_LABEL,
    AuthConfig,
    ContainerConfig,
    ContainerEvent,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    EventListener,
    EventType,
    ExecResult,
    ExecSession,
    Image,
    ImageSpec,
    LogOptions,
    NotFoundFailure,
    PodSandboxConfig,
    PodSandboxStatus,
    PortStream,
    RuntimeCondition,
    RuntimeFailure,
    RuntimeVersion,
    SandboxFailure,
    SandboxState,
)
from .ipam import IPPool

RUN_SECONDS = "sim.nanokube.io/run-seconds"
EXIT_CODE = "sim.nanokube.io/exit-code"
RUNTIME_NAME = "fake"


@dataclass
class FakeRuntimeSettings:
    sandbox_delay: tuple[float, float] = (0.0, 0.0)  # seconds, uniform in [low, high]
    pull_delay: tuple[float, float] = (0.0, 0.0)
    term_exit_code: int = 0
    runtime_version: str = "0.1.0"
    image_size: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class ContainerPlan:
    run_seconds: float | None = None  # None: runs until stopped
    exit_code: int = 0


Planner = Callable[[PodSandboxConfig, ContainerConfig], ContainerPlan]


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def annotation_plan(sandbox: PodSandboxConfig, config: ContainerConfig) -> ContainerPlan:
    """A container's plan from its Pod's ``sim.nanokube.io/*`` annotations (see the module docstring)."""
    notes = sandbox.annotations
    name = config.labels.get(CONTAINER_NAME_LABEL, config.metadata.name)
    init = config.labels.get(CONTAINER_KIND_LABEL) == "init"
    run = _number(notes.get(f"{RUN_SECONDS}.{name}"))
    if run is None:
        run = 0.0 if init else _number(notes.get(RUN_SECONDS))
    code_text = notes.get(f"{EXIT_CODE}.{name}", None if init else notes.get(EXIT_CODE))
    code = _number(code_text)
    return ContainerPlan(run, int(code) if code is not None else 0)


def normalize_image(image: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as containerd names images."""
    name, _, digest = image.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def image_digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


@dataclass
class _Sandbox:
    status: PodSandboxStatus
    containers: list[str] = field(default_factory=list)


@dataclass
class _Container:
    status: ContainerStatus
    plan: ContainerPlan
    timer: asyncio.TimerHandle | None = None


class FakeRuntime:
    def __init__(self, settings: FakeRuntimeSettings | None = None, *, planner: Planner = annotation_plan,
                 pod_cidr: str = "", rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or FakeRuntimeSettings()
        self.planner = planner
        self.clock = clock
        self._rng = rng or random.Random()
        self._pool = IPPool(pod_cidr) if pod_cidr else None
        self._sandboxes: dict[str, _Sandbox] = {}
        self._by_uid: dict[str, list[str]] = {}
        self._containers: dict[str, _Container] = {}
        self._images: dict[str, Image] = {}
        self._listeners: list[EventListener] = []
        self._exit_waiters = ExitWaiters()

    # -- runtime ------------------------------------------------------------------------------------------
    async def version(self) -> RuntimeVersion:
        return RuntimeVersion(RUNTIME_NAME, self.settings.runtime_version)

    async def status(self) -> list[RuntimeCondition]:
        return [RuntimeCondition("RuntimeReady", True), RuntimeCondition("NetworkReady", True)]

    async def update_runtime_config(self, pod_cidr: str) -> None:
        if self._pool is None or self._pool.cidr != pod_cidr:
            self._pool = IPPool(pod_cidr)

    def subscribe(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    async def recover(self) -> None:
        """Nothing to do: the state lives in this object, which an agent keeps across its own restarts."""

    def _emit(self, container: ContainerStatus, kind: EventType, at: float) -> None:
        event = ContainerEvent(container.id, kind, at, container.labels.get(POD_UID_LABEL, ""),
                               container.sandbox_id)
        for listener in self._listeners:
            listener(event)

    async def _delay(self, bounds: tuple[float, float]) -> None:
        low, high = bounds
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high) if high > low else high)

    # -- sandboxes ----------------------------------------------------------------------------------------
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        await self._delay(self.settings.sandbox_delay)
        ip = ""
        if not config.host_network:
            if self._pool is None:
                raise SandboxFailure("the fake runtime has no pod CIDR yet (update_runtime_config)")
            ip = self._pool.allocate()
        sandbox_id = secrets.token_hex(32)
        status = PodSandboxStatus(sandbox_id, config.metadata, SandboxState.READY, self.clock(), ip,
                                  labels=config.labels, annotations=config.annotations)
        self._sandboxes[sandbox_id] = _Sandbox(status)
        self._by_uid.setdefault(config.metadata.uid, []).append(sandbox_id)
        return sandbox_id

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        found = self._sandboxes.get(sandbox_id)
        if found is None:
            raise NotFoundFailure(f"pod sandbox {sandbox_id} not found")
        return found

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for cid in sandbox.containers:
            self._exit(cid, 137, "Error")
        if sandbox.status.state is SandboxState.READY and self._pool is not None:
            self._pool.release(sandbox.status.ip)
        sandbox.status.state = SandboxState.NOT_READY

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for cid in list(sandbox.containers):
            await self.remove_container(cid)
        del self._sandboxes[sandbox_id]
        uid = sandbox.status.metadata.uid
        ids = [s for s in self._by_uid.get(uid, []) if s != sandbox_id]
        if ids:
            self._by_uid[uid] = ids
        else:
            self._by_uid.pop(uid, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return copy.copy(self._sandbox(sandbox_id).status)

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        ids = self._by_uid.get(pod_uid, []) if pod_uid is not None else list(self._sandboxes)
        return [copy.copy(self._sandboxes[i].status) for i in ids]

    # -- containers ---------------------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeFailure(f"sandbox {sandbox_id} is not ready")
        image = normalize_image(config.image)
        found = self._images.get(image)
        if found is None:
            raise RuntimeFailure(f'image "{config.image}" not present')
        cid = secrets.token_hex(32)
        labels = config.labels
        labels.setdefault(POD_UID_LABEL, sandbox.status.metadata.uid)
        status = ContainerStatus(cid, sandbox_id, config.metadata, ContainerState.CREATED, self.clock(), image,
                                 found.repo_digests[0], labels=labels, annotations=config.annotations,
                                 log_path=config.log_path)
        self._containers[cid] = _Container(status, self.planner(sandbox_config, config))
        sandbox.containers.append(cid)
        self._emit(status, EventType.CREATED, status.created_at)
        return cid

    def _container(self, container_id: str) -> _Container:
        found = self._containers.get(container_id)
        if found is None:
            raise NotFoundFailure(f"container {container_id} not found")
        return found

    async def start_container(self, container_id: str) -> None:
        container = self._container(container_id)
        status = container.status
        if status.state is not ContainerState.CREATED:
            raise RuntimeFailure(f"container {container_id} is {status.state}, not created")
        status.state = ContainerState.RUNNING
        status.started_at = self.clock()
        run = container.plan.run_seconds
        if run is not None:
            code = container.plan.exit_code
            container.timer = asyncio.get_running_loop().call_later(
                run, self._exit, container_id, code, "Completed" if code == 0 else "Error")
        self._emit(status, EventType.STARTED, status.started_at)

    def _exit(self, container_id: str, code: int, reason: str) -> None:
        container = self._containers.get(container_id)
        if container is None or container.status.state is not ContainerState.RUNNING:
            return
        if container.timer is not None:
            container.timer.cancel()
            container.timer = None
        status = container.status
        status.state = ContainerState.EXITED
        status.finished_at = self.clock()
        status.exit_code = code
        status.reason = reason
        self._exit_waiters.wake(container_id, code)
        self._emit(status, EventType.STOPPED, status.finished_at)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        container = self._container(container_id)
        if container.status.state is ContainerState.CREATED:
            container.status.state = ContainerState.EXITED
            container.status.finished_at = self.clock()
            return
        code = self.settings.term_exit_code if timeout > 0 else 137
        self._exit(container_id, code, "Completed" if code == 0 else "Error")

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.pop(container_id, None)
        if container is None:
            return
        if container.timer is not None:
            container.timer.cancel()
        sandbox = self._sandboxes.get(container.status.sandbox_id)
        if sandbox is not None and container_id in sandbox.containers:
            sandbox.containers.remove(container_id)
        self._exit_waiters.wake(container_id, container.status.exit_code)
        self._emit(container.status, EventType.DELETED, self.clock())

    async def container_status(self, container_id: str) -> ContainerStatus:
        return copy.copy(self._container(container_id).status)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        if sandbox_id is None:
            return [copy.copy(c.status) for c in self._containers.values()]
        sandbox = self._sandboxes.get(sandbox_id)
        ids = sandbox.containers if sandbox is not None else []
        return [copy.copy(self._containers[i].status) for i in ids]

    # -- streaming and stats: built-in commands, simulated logs, port-forward to a loopback target ---------
    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult:
        self._container(container_id)
        return ExecResult(0)

    def _running(self, container_id: str) -> _Container:
        container = self._container(container_id)
        if container.status.state is not ContainerState.RUNNING:
            raise RuntimeFailure(f"container {container_id} is not running")
        return container

    def _hostname(self, container: _Container) -> str:
        sandbox = self._sandboxes.get(container.status.sandbox_id)
        return sandbox.status.metadata.name if sandbox is not None else ""

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        container = self._running(container_id)
        return start_exec(cmd, stdin=stdin, tty=tty, hostname=self._hostname(container))

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        container = self._running(container_id)
        return start_attach(self._exited(container_id), stdin=stdin, tty=tty, hostname=self._hostname(container))

    def _exited(self, container_id: str) -> asyncio.Future[int]:
        """A future of the container's exit code (already done if it has exited)."""
        status = self._container(container_id).status
        return self._exit_waiters.wait(container_id,
                                       status.exit_code if status.state is ContainerState.EXITED else None)

    async def port_forward(self, sandbox_id: str, port: int) -> PortStream:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeFailure(f"pod sandbox {sandbox_id} is not ready")
        return await connect_loopback(sandbox.status.annotations, port)

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        status = self._container(container_id).status
        sandbox = self._sandboxes.get(status.sandbox_id)
        lines = log_lines(status, sandbox.status.annotations if sandbox is not None else {})
        budget = options.limit_bytes
        for chunk in select_lines(lines, options):
            yield chunk
            budget = None if budget is None else budget - len(chunk)
        if not options.follow or status.state is ContainerState.EXITED or (budget is not None and budget <= 0):
            return
        await self._exited(container_id)
        if status.state is ContainerState.EXITED:
            chunk = log_line(status.finished_at, log_lines(status, {})[-1][1], options.timestamps)
            yield chunk[:budget] if budget is not None else chunk

    async def container_stats(self, container_id: str) -> ContainerStats:
        self._container(container_id)
        return ContainerStats(container_id, self.clock())

    # -- images -------------------------------------------------------------------------------------------
    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        await self._delay(self.settings.pull_delay)
        name = normalize_image(image.image)
        found = self._images.get(name)
        if found is None:
            repo, _, digest = name.partition("@")
            if not digest:
                repo, digest = repo.rsplit(":", 1)[0], image_digest(name)
            found = Image(image_digest("id:" + name), (name,), (f"{repo}@{digest}",), self.settings.image_size)
            self._images[name] = found
        return found.repo_digests[0]

    async def image_status(self, image: ImageSpec) -> Image | None:
        return self._images.get(normalize_image(image.image))

    async def list_images(self) -> list[Image]:
        return list(self._images.values())

    async def remove_image(self, image: ImageSpec) -> None:
        self._images.pop(normalize_image(image.image), None)

