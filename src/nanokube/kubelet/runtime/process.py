"""The process runtime: containers are plain host processes, one supervisor each, no isolation, no root needed.

``ProcessRuntime`` implements the CRI-shaped ``Runtime`` where the native runtime cannot run (not root, no
runc, no CNI). It is honest about what it is, and the node says so (``process_node.py``):

* A sandbox is a record (``state.Sandbox``, no namespaces) with its own 127.x address from a
  ``LoopbackNetwork`` as the Pod IP. Processes share the host's network, filesystem, users and PIDs: a server
  must bind its Pod IP (e.g. ``$(POD_IP)`` from the downward API) for two Pods to use the same port.
* A container is a process started by its shim (``process_shim.py``, the native ``shim.py`` with a fork/exec
  instead of ``runc create``) in a session and process group of its own, with the container's command, args,
  env and working directory, as the agent's user. Its stdout/stderr go to the CRI log, attach works through
  the shim, and its exit (128+signal when killed) is recorded by the shim in ``exit.json``. ``create_container``
  only validates and writes the launch files; ``start_container`` starts the shim, which execs the process.
* Images are not pulled or unpacked: the host image (``nanokube.io/host``) is the host; any other image name
  stands for the host too, so its command must exist on this machine (``process_io.launch`` says so clearly).
* No limits are enforced (no cgroups), no OOM kills are detected, volumes are not mounted (there are no mount
  namespaces), and /etc/hosts and resolv.conf are the host's.

Stop is SIGTERM to the container's process, the grace period, then SIGKILL to its whole process group; when
the process ends its shim kills what is left of the group and any orphan it inherited. State is on disk as in
the native runtime (``state.py``), so ``recover`` re-adopts running containers after an agent restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nanokube import __version__
from nanokube.kubelet.network.base import PodNetworkProvider

from . import process_io as io
from .interface import (
    POD_UID_LABEL,
    AuthConfig,
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    CreateContainerFailure,
    EventType,
    ExecResult,
    ExecSession,
    Image,
    ImageSpec,
    PodSandboxConfig,
    PodSandboxStatus,
    PortStream,
    RuntimeCondition,
    RuntimeFailure,
    RuntimeVersion,
    SandboxFailure,
    SandboxState,
    StartContainerFailure,
)
from .process_recovery import NO_SHIM, ProcessShimStarter, recover_state, shim_python
from .sandbox import pod_hostname
from .shimctl import reap, write_conf
from .shimmed import ShimmedRuntime
from .state import (
    Container,
    Sandbox,
    lost_shim,
    process_start_time,
    read_json,
    remove_container_dir,
    remove_empty_dirs,
    write_json,
)

RUNTIME_NAME = "process"
ISOLATION_WARNING = ("process runtime: containers are plain processes of this host, not isolated (no namespaces, "
                     "no cgroups, no resource limits, no volume mounts); each Pod only gets its own 127.x address")
log = logging.getLogger(__name__)


@dataclass
class ProcessSettings:
    state_dir: Path  # <data dir>/process-node
    python: str = field(default_factory=shim_python)  # runs the shims
    start_timeout: float = 30.0
    spare_shim: bool = True


class ProcessRuntime(ShimmedRuntime):
    def __init__(self, settings: ProcessSettings, network: PodNetworkProvider, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self.settings = settings
        self.network = network
        self.sandbox_dir = settings.state_dir / "sandboxes"
        self.container_dir = settings.state_dir / "containers"
        self.log_dir = settings.state_dir / "logs"
        for d in (self.sandbox_dir, self.container_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._images: dict[str, Image] = {}
        self.shims: ProcessShimStarter = ProcessShimStarter(settings.python, str(settings.state_dir),
                                                            spare=settings.spare_shim)

    # -- runtime ------------------------------------------------------------------------------------------
    async def version(self) -> RuntimeVersion:
        return RuntimeVersion(RUNTIME_NAME, __version__)

    async def status(self) -> list[RuntimeCondition]:
        return [RuntimeCondition("RuntimeReady", True, "ProcessRuntime", ISOLATION_WARNING),
                RuntimeCondition("NetworkReady", True, "LoopbackAddresses", "each Pod has its own 127.x address")]

    async def update_runtime_config(self, pod_cidr: str) -> None:
        """Nothing to do: the loopback range is chosen when the network is built."""

    # -- sandboxes ----------------------------------------------------------------------------------------
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = secrets.token_hex(32)
        d = self.sandbox_dir / sid
        d.mkdir(mode=0o700)
        status = PodSandboxStatus(sid, config.metadata, SandboxState.NOT_READY, self.clock(),
                                  labels=config.labels, annotations=config.annotations)
        sandbox = Sandbox(config, status, d)
        sandbox.save(creating=True)
        meta = config.metadata
        if not config.host_network:
            try:
                status.ip = (await self.network.setup(meta.uid, meta.namespace, meta.name)).ip
            except Exception as err:
                await asyncio.to_thread(remove_container_dir, None, d)
                raise err if isinstance(err, SandboxFailure) else SandboxFailure(str(err)) from err
        status.state = SandboxState.READY
        sandbox.save()
        self._sandboxes[sid] = sandbox
        return sid

    async def _release_network(self, sandbox: Sandbox) -> None:
        """Give back the Pod's address unless another ready sandbox of the Pod uses it (it is keyed by uid)."""
        uid = sandbox.uid
        if sandbox.config.host_network or any(
                s.uid == uid and s.status.state is SandboxState.READY and s is not sandbox
                for s in self._sandboxes.values()):
            return
        await self.network.teardown(uid)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for c in self._sandbox_containers(sandbox_id):
            await self.remove_container(c.status.id)
        await asyncio.to_thread(remove_container_dir, None, sandbox.dir)
        del self._sandboxes[sandbox_id]
        remove_empty_dirs(self._pod_log_dir(sandbox.config))

    # -- containers ---------------------------------------------------------------------------------------
    def _pod_log_dir(self, config: PodSandboxConfig) -> Path:
        """The Pod's log directory under the state dir (/var/log/pods needs root): same last component."""
        meta = config.metadata
        name = Path(config.log_directory).name or f"{meta.namespace}_{meta.name}_{meta.uid}"
        return self.log_dir / name

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise CreateContainerFailure(f"sandbox {sandbox_id} is not ready")
        what = io.launch(config, pod_hostname(sandbox.config))
        if config.mounts:
            log.warning("container %s of pod %s/%s: %d volume mount(s) not made (the process runtime has no mount "
                        "namespaces)", config.metadata.name, sandbox.config.metadata.namespace,
                        sandbox.config.metadata.name, len(config.mounts))
        cid = secrets.token_hex(32)
        d = self.container_dir / cid
        d.mkdir(mode=0o700)
        labels = dict(config.labels)
        labels.setdefault(POD_UID_LABEL, sandbox.uid)
        relative = config.log_path or f"{config.metadata.name}/{config.metadata.attempt}.log"
        status = ContainerStatus(cid, sandbox_id, config.metadata, ContainerState.CREATED, self.clock(),
                                 io.image_name(config.image), io.image_ref(config.image), labels=labels,
                                 annotations=dict(config.annotations),
                                 log_path=str(self._pod_log_dir(sandbox.config) / relative))
        c = Container(status, d, "", tty=config.tty, shim_pid=NO_SHIM)
        try:
            io.write_launch(d, what)
            write_conf(d, {"id": cid, "log_path": status.log_path, "tty": config.tty, "stdin": config.stdin,
                           "stdin_once": config.stdin_once, "cwd": what.cwd})
            c.save()
        except (OSError, ValueError) as err:
            await asyncio.to_thread(remove_container_dir, None, d)
            raise CreateContainerFailure(str(err)) from err
        self._containers[cid] = c
        self._emit(c, EventType.CREATED)
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        if c.status.state is not ContainerState.CREATED:
            raise StartContainerFailure(f"container {container_id} is {c.status.state}, not created")
        c.status.started_at = self.clock()
        try:
            c.popen = await self.shims.start(c.dir, self.settings.start_timeout)
        except RuntimeFailure as err:
            c.status.started_at = 0.0
            c.status.message = str(err)
            c.apply_exit({"exit_code": 128, "finished_at": self.clock()})
            write_json(c.dir / "exit.json", {"exit_code": 128, "finished_at": c.status.finished_at})
            c.save()
            self._emit(c, EventType.STOPPED)
            raise StartContainerFailure(str(err)) from err
        c.shim_pid, c.shim_start = c.popen.pid, process_start_time(c.popen.pid)
        c.status.state = ContainerState.RUNNING
        c.save()
        self._watch(c)
        self._emit(c, EventType.STARTED)

    # -- exits --------------------------------------------------------------------------------------------
    def _on_shim_exit(self, c: Container) -> None:
        self._unwatch(c)
        reap(c.shim_pid, c.popen)
        if c.status.state is ContainerState.EXITED:
            return
        result = read_json(c.dir / "exit.json")
        if result is None:  # the shim died without recording: nothing supervises the process any more
            result = lost_shim(self.clock())
            io.kill_group(self.init_pid(c), signal.SIGKILL)
            write_json(c.dir / "exit.json", result)
        c.apply_exit(result)
        self._emit(c, EventType.STOPPED)

    def init_pid(self, c: Container) -> int:
        """The container's process (and process group) id, 0 if it never started."""
        try:
            return int((c.dir / "init.pid").read_text().strip())
        except (OSError, ValueError):
            return 0

    def _signal(self, c: Container, sig: int, *, group: bool) -> None:
        """Signal the container's process (or its group) while its shim, which has not reaped it, lives."""
        pid = self.init_pid(c)
        if c.exited.is_set() or not pid or not c.shim_alive():
            return
        if group:
            io.kill_group(pid, sig)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._container(container_id)
        if c.status.state is ContainerState.EXITED:
            return
        if c.status.state is ContainerState.CREATED:  # nothing runs yet
            c.apply_exit({"exit_code": 137, "finished_at": self.clock()})
            write_json(c.dir / "exit.json", {"exit_code": 137, "finished_at": c.status.finished_at})
            self._emit(c, EventType.STOPPED)
            return
        if timeout > 0:
            self._signal(c, signal.SIGTERM, group=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.exited.wait(), timeout)
        for _ in range(3):
            if c.exited.is_set():
                return
            self._signal(c, signal.SIGKILL, group=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.exited.wait(), 5)
        if not c.exited.is_set():
            raise RuntimeFailure(f"container {container_id} did not stop")

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        if c.status.state is not ContainerState.EXITED:
            await self.stop_container(container_id, 0)
        self._unwatch(c)
        await asyncio.to_thread(remove_container_dir, None, c.dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(c.status.log_path)
        self._containers.pop(container_id, None)
        self._emit(c, EventType.DELETED)

    async def recover(self) -> None:
        """Re-adopt what a previous agent left (see ``process_recovery``); running processes are untouched."""
        await recover_state(self)

    # -- streaming and stats ------------------------------------------------------------------------------
    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult:
        c = self._running(container_id)
        return await io.exec_sync(io.read_launch(c.dir), cmd, timeout)

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        c = self._running(container_id)
        return await io.exec(io.read_launch(c.dir), cmd, stdin=stdin, tty=tty)

    async def port_forward(self, sandbox_id: str, port: int) -> PortStream:
        """A TCP connection to the Pod's address (127.0.0.1 for hostNetwork Pods) and ``port``."""
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeFailure(f"pod sandbox {sandbox_id} is not ready")
        return await io.connect(sandbox.status.ip or "127.0.0.1", port)

    async def container_stats(self, container_id: str) -> ContainerStats:
        c = self._container(container_id)
        pid = self.init_pid(c)
        cpu, rss = await asyncio.to_thread(io.group_stats, pid) if pid and not c.exited.is_set() else (0, 0)
        return ContainerStats(container_id, self.clock(), cpu, rss, 0)

    # -- images: the host stands in for every image -------------------------------------------------------
    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        record = io.image_record(image.image)
        self._images[record.id] = record
        return record.repo_digests[0]

    async def image_status(self, image: ImageSpec) -> Image | None:
        return io.image_record(image.image)

    async def list_images(self) -> list[Image]:
        host = io.image_record("host")
        return [host, *(i for i in self._images.values() if i.id != host.id)]

    async def remove_image(self, image: ImageSpec) -> None:
        self._images.pop(io.image_record(image.image).id, None)
