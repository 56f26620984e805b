"""The native runtime: real containers run by runc from OCI bundles, one shim each, state on disk.

``NativeRuntime`` implements the CRI-shaped ``Runtime`` for a root agent on Linux. Its parts:

* A sandbox (``sandbox.py``) is a directory with the Pod's files and namespaces; the network namespace comes
  from a ``PodNetwork`` (CNI in the agent, a loopback-only namespace in tests).
* A container is a directory under ``<state>/containers/<id>``: the OCI bundle (``config.json`` from
  ``bundle.py``, the overlay root filesystem from ``rootfs.py`` mounted at ``rootfs``), and a shim
  (``shim.py``, forked from the zygote ``shimctl.ShimZygote`` keeps) that runs ``runc create``, keeps the
  output pipes, writes the CRI log, serves attach and records the exit. ``start_container`` does what ``runc start`` does (reads runc's
  exec fifo, ``shimctl.release_init``), falling back to ``runc start`` itself; the agent learns of exits
  by watching the shim's pidfd. Exec, attach and port-forward are in ``streams.py``, log reading in
  ``crilog.py``.
* Everything needed to rebuild the state is on disk (``state.py``), so ``recover`` (``recovery.py``) after an
  agent restart re-adopts running containers without touching them: shims keep running, their pidfds are
  watched again. ``close`` is the agent's goodbye: it stops watching and lets the shim zygote go.

Stop is SIGTERM, the grace period, then SIGKILL to the container's init (which ends its PID namespace) and
whatever is left in its cgroup. OOM kills are read by the shim from the cgroup when the container exits.
Blocking work (runc, mount, rmtree, and on the way to a running container every file written) runs in
subprocesses or threads: on a busy disk creating a file can take milliseconds, and in ``nanokube up`` the event
loop it would stall is the API server's too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import streams
from .bundle import PodParts, build_config, container_spec
from .cgroups import Cgroup, CgroupLayout, detect
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
from .rootfs import ImageStore, NodeImages, ResolvedImage, mount_overlay, resolve_user
from .sandbox import PodNetwork, make_pod_files, pod_hostname, remove_pod_files
from .shimctl import ShimStarter, ShimZygote, reap, release_init, write_conf
from .shimmed import ShimmedRuntime
from .state import (
    Container,
    Sandbox,
    disk_usage,
    lost_shim,
    process_start_time,
    read_json,
    remove_container_dir,
    remove_empty_dirs,
    write_json,
)

RUNTIME_NAME = "native"


@dataclass
class NativeSettings:
    state_dir: Path = Path("/var/lib/nanokube/node")  # <data dir>/node
    runc: str = "runc"
    cgroup_root: str = "nanokube"  # Pods' cgroups are /<cgroup_root>/pod<uid> unless the sandbox names a parent
    python: str = sys.executable  # runs the shims
    masked_host_paths: tuple[str, ...] = ()  # hidden from host-image containers besides the state dir and logs
    create_timeout: float = 60.0
    spare_shim: bool = True  # without the zygote: keep a shim started ahead of time (about 15 ms off a creation)
    shim_zygote: bool = True  # fork shims from one zygote process (about 10 ms of CPU and a few MiB less each)


class NativeRuntime(ShimmedRuntime):
    def __init__(self, settings: NativeSettings, network: PodNetwork, images: ImageStore | None = None, *,
                 clock: Callable[[], float] = time.time, cgroups: CgroupLayout | None = None) -> None:
        super().__init__(clock)
        self.settings = settings
        self.network = network
        self.images = NodeImages(images)
        self.cgroups = cgroups or detect()
        self.sandbox_dir = settings.state_dir / "sandboxes"
        self.container_dir = settings.state_dir / "containers"
        self.runc_root = settings.state_dir / "runc"
        for d in (self.sandbox_dir, self.container_dir, self.runc_root):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._version = ""
        self._background: set[asyncio.Task[None]] = set()
        self.shims: ShimStarter | ShimZygote = (
            ShimZygote(settings.python, str(settings.state_dir)) if settings.shim_zygote
            else ShimStarter(settings.python, str(settings.state_dir), spare=settings.spare_shim))

    # -- runtime ------------------------------------------------------------------------------------------
    async def version(self) -> RuntimeVersion:
        if not self._version:
            out = await self._runc_out("--version")
            self._version = out.split()[2] if out.startswith("runc version") else "unknown"
        return RuntimeVersion(RUNTIME_NAME, self._version)

    async def status(self) -> list[RuntimeCondition]:
        ready = shutil.which(self.settings.runc) is not None
        runtime = RuntimeCondition("RuntimeReady", ready, "" if ready else "RuncNotFound",
                                   "" if ready else f"{self.settings.runc} not found (install the Debian package runc)")
        return [runtime, RuntimeCondition("NetworkReady", True)]

    async def update_runtime_config(self, pod_cidr: str) -> None:
        update = getattr(self.network, "update_pod_cidr", None)  # the CNI network re-addresses its bridge
        if update is not None:
            await update(pod_cidr)

    # -- runc ---------------------------------------------------------------------------------------------
    async def _runc_out(self, *args: str, check: bool = True) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.settings.runc, "--root", str(self.runc_root), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if check and proc.returncode != 0:
            raise RuntimeFailure(f"runc {args[0]}: {err.decode(errors='replace').strip()}")
        return out.decode()

    async def _kill(self, cid: str, sig: str) -> None:
        await self._runc_out("kill", cid, sig, check=False)

    # -- sandboxes ----------------------------------------------------------------------------------------
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = secrets.token_hex(32)
        d = self.sandbox_dir / sid
        await asyncio.to_thread(d.mkdir, mode=0o755)
        status = PodSandboxStatus(sid, config.metadata, SandboxState.NOT_READY, self.clock(),
                                  labels=config.labels, annotations=config.annotations)
        sandbox = Sandbox(config, status, d)
        await sandbox.store(creating=True)
        meta = config.metadata
        try:
            if not config.host_network:
                net = await self.network.setup(meta.uid, meta.namespace, meta.name)
                sandbox.netns, status.ip = net.netns_path, net.ip
                if not net.netns_path:
                    raise SandboxFailure("the pod network gave no network namespace (the native runtime needs one)")
            await make_pod_files(d, config, status.ip)
        except Exception as err:
            with contextlib.suppress(Exception):
                await self._release_network(sandbox)
            await asyncio.to_thread(remove_pod_files, d)
            raise err if isinstance(err, SandboxFailure) else SandboxFailure(str(err)) from err
        status.state = SandboxState.READY
        await sandbox.store()
        self._sandboxes[sid] = sandbox
        return sid

    def _pod_cgroup(self, sandbox: Sandbox) -> str:
        return sandbox.config.cgroup_parent or f"/{self.settings.cgroup_root}/pod{sandbox.config.metadata.uid}"

    async def _release_network(self, sandbox: Sandbox) -> None:
        """Tear down the Pod's network unless another ready sandbox of the Pod uses it (it is keyed by uid)."""
        uid = sandbox.config.metadata.uid
        if sandbox.config.host_network or any(
                s.config.metadata.uid == uid and s.status.state is SandboxState.READY and s is not sandbox
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
        await asyncio.to_thread(remove_pod_files, sandbox.dir)
        del self._sandboxes[sandbox_id]
        uid = sandbox.config.metadata.uid
        if not any(s.config.metadata.uid == uid for s in self._sandboxes.values()):
            await asyncio.to_thread(Cgroup(self.cgroups, self._pod_cgroup(sandbox)).destroy, 3)
        if sandbox.config.log_directory:
            remove_empty_dirs(Path(sandbox.config.log_directory))

    # -- containers ---------------------------------------------------------------------------------------
    def _log_path(self, sandbox: Sandbox, config: ContainerConfig) -> Path:
        relative = config.log_path or f"{config.metadata.name}/{config.metadata.attempt}.log"
        base = Path(sandbox.config.log_directory) if sandbox.config.log_directory else sandbox.dir / "logs"
        return base / relative

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise CreateContainerFailure(f"sandbox {sandbox_id} is not ready")
        image = self.images.resolve(config.image)
        cid = secrets.token_hex(32)
        d = self.container_dir / cid
        await asyncio.to_thread(d.mkdir, mode=0o700)
        labels = dict(config.labels)
        labels.setdefault(POD_UID_LABEL, sandbox.config.metadata.uid)
        status = ContainerStatus(cid, sandbox_id, config.metadata, ContainerState.CREATED, self.clock(), image.name,
                                 image.ref,
                                 labels=labels, annotations=dict(config.annotations),
                                 log_path=str(self._log_path(sandbox, config)))
        c = Container(status, d, f"{self._pod_cgroup(sandbox).rstrip('/')}/{cid}", tty=config.tty)
        try:
            rootfs = await mount_overlay(image.layers, d)
            await asyncio.to_thread(self._write_bundle, c, config, sandbox, image, rootfs)
            if isinstance(self.shims, ShimZygote):
                c.shim_pid = await self.shims.start(d, self.settings.create_timeout)
            else:
                c.popen = await self.shims.start(d, self.settings.create_timeout)
                c.shim_pid = c.popen.pid
            c.shim_start = process_start_time(c.shim_pid)
        except Exception as err:
            await self._discard(c)
            raise err if isinstance(err, CreateContainerFailure) else CreateContainerFailure(str(err)) from err
        await c.store()
        self._containers[cid] = c
        self._watch(c)
        self._emit(c, EventType.CREATED)
        return cid

    def _write_bundle(self, c: Container, config: ContainerConfig, sandbox: Sandbox, image: ResolvedImage,
                      rootfs: Path) -> None:
        """The container's ``config.json``, ``shim.conf`` and record (file work: runs on a worker thread)."""
        for mount in config.mounts:
            if not os.path.exists(mount.host_path):
                raise CreateContainerFailure(f'volume source "{mount.host_path}" does not exist')
        masks = [str(self.settings.state_dir), "/var/log/pods", "/tmp", *self.settings.masked_host_paths]
        spec = container_spec(config, image.config, rootfs=str(rootfs), cgroups_path=c.cgroups_path,
                              pod=PodParts(sandbox.dir, sandbox.netns, sandbox.config.host_network,
                                           pod_hostname(sandbox.config)),
                              user=resolve_user(rootfs, image.config.user), masks=masks if image.host else [],
                              swap_accounting=Cgroup(self.cgroups, "/").swap_limit_supported())
        write_json(c.dir / "config.json", build_config(spec))
        write_conf(c.dir, {"id": c.status.id, "runc": self.settings.runc, "root": str(self.runc_root),
                           "log_path": c.status.log_path, "tty": config.tty, "stdin": config.stdin,
                           "stdin_once": config.stdin_once,
                           "oom_file": Cgroup(self.cgroups, c.cgroups_path).oom_files()})
        c.save()

    async def _discard(self, c: Container) -> None:
        """Undo a container: runc state, cgroup, root filesystem, directory."""
        await self._runc_out("delete", "--force", c.status.id, check=False)
        await asyncio.to_thread(remove_container_dir, Cgroup(self.cgroups, c.cgroups_path), c.dir)

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        if c.status.state is not ContainerState.CREATED:
            raise StartContainerFailure(f"container {container_id} is {c.status.state}, not created")
        c.starting = True
        try:
            c.status.started_at = self.clock()
            try:
                if not await release_init(self.runc_root, container_id, c.dir):
                    await self._runc_out("start", container_id)
            except RuntimeFailure as err:
                c.status.started_at = 0.0
                c.status.message = str(err)
                await self._kill(container_id, "KILL")
                raise StartContainerFailure(str(err)) from err
            if c.status.state is ContainerState.CREATED:
                c.status.state = ContainerState.RUNNING
            await c.store()
            self._emit(c, EventType.STARTED)
        finally:
            c.starting = False
            if c.exit_pending:
                self._finish_exit(c)

    # -- exits --------------------------------------------------------------------------------------------
    def _on_shim_exit(self, c: Container) -> None:
        self._unwatch(c)
        reap(c.shim_pid, c.popen)
        if c.starting:
            c.exit_pending = True
        else:
            self._finish_exit(c)

    def _finish_exit(self, c: Container) -> None:
        """Record how the container ended (from its shim's exit.json) and tell subscribers."""
        c.exit_pending = False
        if c.status.state is ContainerState.EXITED:
            return
        result = read_json(c.dir / "exit.json")
        if result is None:  # the shim died without recording: the container can no longer be supervised
            result = lost_shim(self.clock())
            task = asyncio.get_running_loop().create_task(self._kill(c.status.id, "KILL"))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            write_json(c.dir / "exit.json", result)
        c.apply_exit(result)
        self._emit(c, EventType.STOPPED)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._container(container_id)
        if c.status.state is ContainerState.EXITED:
            return
        if timeout > 0 and c.status.state is ContainerState.RUNNING:
            await self._kill(container_id, "TERM")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.exited.wait(), timeout)
        for attempt in range(3):
            if c.exited.is_set():
                return
            await self._kill(container_id, "KILL")
            if attempt:
                await asyncio.to_thread(Cgroup(self.cgroups, c.cgroups_path).kill_all)
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
        await self._discard(c)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(c.status.log_path)
        self._containers.pop(container_id, None)
        self._emit(c, EventType.DELETED)

    # -- recovery -----------------------------------------------------------------------------------------
    async def recover(self) -> None:
        """Re-adopt what a previous agent left: sandboxes and containers from the state directory; running
        containers keep running (their shims are watched again); runc containers nobody knows are deleted."""
        from .recovery import recover_state
        await recover_state(self)
        if isinstance(self.shims, ShimZygote):
            self.shims.prepare()  # the agent is starting: have the zygote ready before the first Pod

    # -- streaming and stats ------------------------------------------------------------------------------
    def _runc_argv(self, *args: str) -> list[str]:
        return [self.settings.runc, "--root", str(self.runc_root), *args]

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult:
        c = self._running(container_id)
        return await streams.exec_sync(self._runc_argv(), c.dir, container_id, cmd, timeout)

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        c = self._running(container_id)
        return await streams.exec(self._runc_argv(), c.dir, container_id, cmd, stdin=stdin, tty=tty)

    async def port_forward(self, sandbox_id: str, port: int) -> PortStream:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeFailure(f"pod sandbox {sandbox_id} is not ready")
        return await streams.port_forward(sandbox.netns, port)

    async def container_stats(self, container_id: str) -> ContainerStats:
        c = self._container(container_id)
        stats = Cgroup(self.cgroups, c.cgroups_path).stats()
        written = await asyncio.to_thread(disk_usage, c.dir / "upper")
        return ContainerStats(container_id, self.clock(), stats.cpu_usage_ns, stats.memory_working_set_bytes, written)

    # -- images -------------------------------------------------------------------------------------------
    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        return await self.images.pull_image(image, auth)

    async def image_status(self, image: ImageSpec) -> Image | None:
        return await self.images.image_status(image)

    async def list_images(self) -> list[Image]:
        return await self.images.list_images()

    async def remove_image(self, image: ImageSpec) -> None:
        await self.images.remove_image(image)
