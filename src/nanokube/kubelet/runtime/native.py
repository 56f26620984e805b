"""The native runtime: real containers run by runc from OCI bundles, one shim each, state on disk.

``NativeRuntime`` implements the CRI-shaped ``Runtime`` for a root agent on Linux. Its parts:

* A sandbox (``sandbox.py``) is a directory with the Pod's files and namespaces; the network namespace comes
  from a ``PodNetwork`` (CNI in the agent, a loopback-only namespace in tests).
* A container is a directory under ``<state>/containers/<id>``: the OCI bundle (``config.json`` from
  ``bundle.py``, the overlay root filesystem from ``rootfs.py`` mounted at ``rootfs``), and a shim
  (``shim.py``) that runs ``runc create``, keeps the output pipes, writes the CRI log and records the exit.
  ``start_container`` is ``runc start``; the agent learns of exits by watching the shim's pidfd.
* Everything needed to rebuild the state is on disk (``state.py``), so ``recover`` after an agent restart
  re-adopts running containers without touching them: shims keep running, their pidfds are watched again.

Stop is SIGTERM, the grace period, then SIGKILL to the container's init (which ends its PID namespace) and
whatever is left in its cgroup. OOM kills are read by the shim from the cgroup when the container exits.
Blocking work (runc, mount, rmtree) runs in subprocesses or threads; small record files are written inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from nanokube.kubelet.images.registry import credentials_from_auth

from . import streams
from .bundle import BundleSpec, build_config, process_args, process_env
from .cgroups import Cgroup, CgroupLayout, detect
from .crilog import read_log
from .fake import normalize_image
from .interface import (
    POD_UID_LABEL,
    AuthConfig,
    ContainerConfig,
    ContainerEvent,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    CreateContainerFailure,
    EventListener,
    EventType,
    ExecResult,
    ExecSession,
    Image,
    ImagePullFailure,
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
    StartContainerFailure,
)
from .rootfs import (
    HOST_IMAGE,
    HOST_IMAGE_CONFIG,
    HOST_IMAGE_RECORD,
    ImageStore,
    RunConfig,
    is_host_image,
    mount_overlay,
    resolve_user,
    unmount,
)
from .sandbox import PodNetwork, make_pod_files, remove_pod_files
from .state import (
    container_status_to_json,
    process_start_time,
    read_json,
    sandbox_config_to_json,
    sandbox_status_to_json,
    write_json,
)

RUNTIME_NAME = "native"
SHIM = Path(__file__).with_name("shim.py")


@dataclass
class NativeSettings:
    state_dir: Path = Path("/var/lib/nanokube/node")  # <data dir>/node
    runc: str = "runc"
    cgroup_root: str = "nanokube"  # Pods' cgroups are /<cgroup_root>/pod<uid> unless the sandbox names a parent
    python: str = sys.executable  # runs the shims
    masked_host_paths: tuple[str, ...] = ()  # hidden from host-image containers besides the state dir and logs
    create_timeout: float = 60.0


@dataclass
class _Sandbox:
    config: PodSandboxConfig
    status: PodSandboxStatus
    dir: Path
    netns: str = ""


@dataclass
class _Container:
    status: ContainerStatus
    dir: Path
    cgroups_path: str
    tty: bool = False
    shim_pid: int = 0
    shim_start: int = 0
    popen: subprocess.Popen[bytes] | None = None
    watch: int = -1
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    starting: bool = False
    exit_pending: bool = False

    def record(self) -> dict[str, object]:
        return {"status": container_status_to_json(self.status), "cgroups_path": self.cgroups_path,
                "tty": self.tty, "shim_pid": self.shim_pid, "shim_start": self.shim_start}


class NativeRuntime:
    def __init__(self, settings: NativeSettings, network: PodNetwork, images: ImageStore | None = None, *,
                 clock: Callable[[], float] = time.time, cgroups: CgroupLayout | None = None) -> None:
        self.settings = settings
        self.network = network
        self.images = images
        self.clock = clock
        self.cgroups = cgroups or detect()
        self.sandbox_dir = settings.state_dir / "sandboxes"
        self.container_dir = settings.state_dir / "containers"
        self.runc_root = settings.state_dir / "runc"
        for d in (self.sandbox_dir, self.container_dir, self.runc_root):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._listeners: list[EventListener] = []
        self._version = ""

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

    def subscribe(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def _emit(self, c: _Container, kind: EventType) -> None:
        event = ContainerEvent(c.status.id, kind, self.clock(), c.status.labels.get(POD_UID_LABEL, ""),
                               c.status.sandbox_id)
        for listener in self._listeners:
            listener(event)

    async def close(self) -> None:
        """Stop watching shims (the agent is going away); containers keep running for the next agent."""
        for c in self._containers.values():
            self._unwatch(c)

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
        d.mkdir(mode=0o755)
        status = PodSandboxStatus(sid, config.metadata, SandboxState.NOT_READY, self.clock(),
                                  labels=config.labels, annotations=config.annotations)
        sandbox = _Sandbox(config, status, d)
        self._save_sandbox(sandbox, creating=True)
        meta = config.metadata
        try:
            if not config.host_network:
                net = await self.network.setup(meta.uid, meta.namespace, meta.name)
                sandbox.netns, status.ip = net.netns_path, net.ip
            await make_pod_files(d, config, status.ip)
        except Exception as err:
            with contextlib.suppress(Exception):
                await self._release_network(sandbox)
            await asyncio.to_thread(remove_pod_files, d)
            raise err if isinstance(err, SandboxFailure) else SandboxFailure(str(err)) from err
        status.state = SandboxState.READY
        self._save_sandbox(sandbox)
        self._sandboxes[sid] = sandbox
        return sid

    def _save_sandbox(self, sandbox: _Sandbox, *, creating: bool = False) -> None:
        write_json(sandbox.dir / "sandbox.json", {
            "config": sandbox_config_to_json(sandbox.config), "status": sandbox_status_to_json(sandbox.status),
            "netns": sandbox.netns, "creating": creating})

    def _sandbox(self, sid: str) -> _Sandbox:
        found = self._sandboxes.get(sid)
        if found is None:
            raise NotFoundFailure(f"pod sandbox {sid} not found")
        return found

    def _pod_cgroup(self, sandbox: _Sandbox) -> str:
        return sandbox.config.cgroup_parent or f"/{self.settings.cgroup_root}/pod{sandbox.config.metadata.uid}"

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for c in self._sandbox_containers(sandbox_id):
            await self.stop_container(c.status.id, 0)
        if sandbox.status.state is SandboxState.READY:
            sandbox.status.state = SandboxState.NOT_READY
            await self._release_network(sandbox)
            self._save_sandbox(sandbox)

    async def _release_network(self, sandbox: _Sandbox) -> None:
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
            _remove_empty_dirs(Path(sandbox.config.log_directory))

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        status = self._sandbox(sandbox_id).status
        return PodSandboxStatus(status.id, status.metadata, status.state, status.created_at, status.ip,
                                list(status.additional_ips), status.labels, status.annotations)

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        return [await self.pod_sandbox_status(s.status.id) for s in self._sandboxes.values()
                if pod_uid is None or s.config.metadata.uid == pod_uid]

    def _sandbox_containers(self, sandbox_id: str) -> list[_Container]:
        return [c for c in self._containers.values() if c.status.sandbox_id == sandbox_id]

    # -- containers ---------------------------------------------------------------------------------------
    def _image(self, image: str) -> tuple[str, str, list[Path], RunConfig]:
        """(name, image ref, lower layers top first, config) of a present image."""
        if is_host_image(image):
            return HOST_IMAGE, HOST_IMAGE_RECORD.repo_digests[0], [Path("/")], HOST_IMAGE_CONFIG
        found = self.images.get(image) if self.images is not None else None
        if self.images is None or found is None:
            raise CreateContainerFailure(f'image "{image}" is not present on this node')
        record = found.cri()
        layers, config = self.images.rootfs_layers(record.id), self.images.config(record.id)
        name = normalize_image(image)
        if name not in record.repo_tags:
            name = record.repo_tags[0] if record.repo_tags else image
        return name, found.image_ref, layers, config

    def _log_path(self, sandbox: _Sandbox, config: ContainerConfig) -> Path:
        relative = config.log_path or f"{config.metadata.name}/{config.metadata.attempt}.log"
        base = Path(sandbox.config.log_directory) if sandbox.config.log_directory else sandbox.dir / "logs"
        return base / relative

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise CreateContainerFailure(f"sandbox {sandbox_id} is not ready")
        name, ref, lowers, image_config = self._image(config.image)
        cid = secrets.token_hex(32)
        d = self.container_dir / cid
        d.mkdir(mode=0o700)
        labels = dict(config.labels)
        labels.setdefault(POD_UID_LABEL, sandbox.config.metadata.uid)
        status = ContainerStatus(cid, sandbox_id, config.metadata, ContainerState.CREATED, self.clock(), name, ref,
                                 labels=labels, annotations=dict(config.annotations),
                                 log_path=str(self._log_path(sandbox, config)))
        c = _Container(status, d, f"{self._pod_cgroup(sandbox).rstrip('/')}/{cid}", tty=config.tty)
        try:
            rootfs = await mount_overlay(lowers, d)
            spec = self._bundle_spec(sandbox, config, image_config, rootfs, c.cgroups_path, is_host_image(config.image))
            write_json(d / "config.json", build_config(spec))
            write_json(d / "shim.json", {
                "id": cid, "runc": self.settings.runc, "root": str(self.runc_root), "log_path": status.log_path,
                "tty": config.tty, "stdin": config.stdin, "stdin_once": config.stdin_once,
                "oom_files": Cgroup(self.cgroups, c.cgroups_path).oom_files()})
            write_json(d / "container.json", c.record())
            await self._spawn_shim(c)
        except Exception as err:
            await self._discard(c)
            raise err if isinstance(err, CreateContainerFailure) else CreateContainerFailure(str(err)) from err
        write_json(d / "container.json", c.record())
        self._containers[cid] = c
        self._watch(c)
        self._emit(c, EventType.CREATED)
        return cid

    def _bundle_spec(self, sandbox: _Sandbox, config: ContainerConfig, image: RunConfig, rootfs: Path,
                     cgroups_path: str, host_image: bool) -> BundleSpec:
        hostname = (sandbox.dir / "hostname").read_text().strip()
        uid, gid = resolve_user(rootfs, image.user)
        masks = sorted({str(self.settings.state_dir), "/var/log/pods", "/tmp", *self.settings.masked_host_paths},
                       key=lambda p: (p.count("/"), p))  # parents first: a later mount would hide a child
        d = sandbox.dir
        files = {"/etc/hosts": str(d / "hosts"), "/etc/hostname": str(d / "hostname"),
                 "/etc/resolv.conf": str(d / "resolv.conf")}
        for mount in config.mounts:
            if not os.path.exists(mount.host_path):
                raise CreateContainerFailure(f'volume source "{mount.host_path}" does not exist')
        return BundleSpec(
            process_args(config, image), process_env(config, image, hostname), str(rootfs), cgroups_path,
            str(d / "ns/ipc"), net_ns=None if sandbox.config.host_network else sandbox.netns,
            uts_ns=None if sandbox.config.host_network else str(d / "ns/uts"),
            cwd=config.working_dir or image.working_dir or "/", uid=uid, gid=gid, tty=config.tty,
            pod_files=files, shm=str(d / "shm"), volumes=list(config.mounts), tmpfs=masks if host_image else [],
            resources=config.resources, swap_accounting=Cgroup(self.cgroups, "/").swap_limit_supported(),
            annotations=config.annotations)

    async def _spawn_shim(self, c: _Container) -> None:
        with open(c.dir / "shim.log", "ab") as log:
            c.popen = subprocess.Popen([self.settings.python, "-S", str(SHIM), str(c.dir)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        c.shim_pid, c.shim_start = c.popen.pid, process_start_time(c.popen.pid)
        assert c.popen.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(c.popen.stdout.readline), self.settings.create_timeout)
        except TimeoutError:
            c.popen.kill()
            raise CreateContainerFailure("runc create timed out") from None
        finally:
            c.popen.stdout.close()
        report = _loads(line)
        if "pid" not in report:
            await asyncio.to_thread(c.popen.wait)
            raise CreateContainerFailure(str(report.get("error") or "the container shim failed to start"))

    async def _discard(self, c: _Container) -> None:
        """Undo a container: runc state, cgroup, root filesystem, directory."""
        await self._runc_out("delete", "--force", c.status.id, check=False)
        await asyncio.to_thread(_cleanup_container, Cgroup(self.cgroups, c.cgroups_path), c.dir)

    def _container(self, container_id: str) -> _Container:
        found = self._containers.get(container_id)
        if found is None:
            raise NotFoundFailure(f"container {container_id} not found")
        return found

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        if c.status.state is not ContainerState.CREATED:
            raise StartContainerFailure(f"container {container_id} is {c.status.state}, not created")
        c.starting = True
        try:
            c.status.started_at = self.clock()
            try:
                await self._runc_out("start", container_id)
            except RuntimeFailure as err:
                c.status.started_at = 0.0
                c.status.message = str(err)
                await self._kill(container_id, "KILL")
                raise StartContainerFailure(str(err)) from err
            if c.status.state is ContainerState.CREATED:
                c.status.state = ContainerState.RUNNING
            write_json(c.dir / "container.json", c.record())
            self._emit(c, EventType.STARTED)
        finally:
            c.starting = False
            if c.exit_pending:
                self._finish_exit(c)

    # -- exits --------------------------------------------------------------------------------------------
    def _watch(self, c: _Container) -> None:
        try:
            c.watch = os.pidfd_open(c.shim_pid)
        except ProcessLookupError:
            asyncio.get_running_loop().call_soon(self._on_shim_exit, c)
            return
        asyncio.get_running_loop().add_reader(c.watch, self._on_shim_exit, c)

    def _unwatch(self, c: _Container) -> None:
        if c.watch >= 0:
            asyncio.get_running_loop().remove_reader(c.watch)
            os.close(c.watch)
            c.watch = -1

    def _on_shim_exit(self, c: _Container) -> None:
        self._unwatch(c)
        if c.popen is not None:
            c.popen.poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(c.shim_pid, os.WNOHANG)
        if c.starting:
            c.exit_pending = True
        else:
            self._finish_exit(c)

    def _finish_exit(self, c: _Container) -> None:
        """Record how the container ended (from its shim's exit.json) and tell subscribers."""
        c.exit_pending = False
        if c.status.state is ContainerState.EXITED:
            return
        result = read_json(c.dir / "exit.json")
        if result is None:  # the shim died without recording: the container can no longer be supervised
            result = {"exit_code": 255, "signal": 0, "finished_at": self.clock(), "oom_killed": False,
                      "message": "the container's shim exited unexpectedly"}
            asyncio.get_running_loop().create_task(self._kill(c.status.id, "KILL"))
            write_json(c.dir / "exit.json", result)
        _apply_exit(c.status, result)
        c.exited.set()
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

    async def container_status(self, container_id: str) -> ContainerStatus:
        return _copy(self._container(container_id).status)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [_copy(c.status) for c in self._containers.values()
                if sandbox_id is None or c.status.sandbox_id == sandbox_id]

    # -- recovery -----------------------------------------------------------------------------------------
    async def recover(self) -> None:
        """Re-adopt what a previous agent left: sandboxes and containers from the state directory; running
        containers keep running (their shims are watched again); runc containers nobody knows are deleted."""
        from .recovery import recover_state
        await recover_state(self)

    # -- streaming and stats ------------------------------------------------------------------------------
    def _running(self, container_id: str) -> _Container:
        c = self._container(container_id)
        if c.status.state is not ContainerState.RUNNING:
            raise RuntimeFailure(f"container {container_id} is not running")
        return c

    def _runc_argv(self, *args: str) -> list[str]:
        return [self.settings.runc, "--root", str(self.runc_root), *args]

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float = 0) -> ExecResult:
        c = self._running(container_id)
        pid_file = f"exec-{secrets.token_hex(6)}.pid"

        async def kill() -> None:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((c.dir / pid_file).read_text()), signal.SIGKILL)

        try:
            return await streams.run_exec(self._runc_argv("exec", "--pid-file", pid_file, container_id, *cmd),
                                          c.dir, timeout, kill)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(c.dir / pid_file)

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecSession:
        c = self._running(container_id)
        pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        if not tty:
            proc = await asyncio.create_subprocess_exec(*self._runc_argv("exec", container_id, *cmd), cwd=c.dir,
                                                        stdin=pipe if stdin else null, stdout=pipe, stderr=pipe)
            return streams.PipeExecSession(proc)
        return await streams.tty_exec(self._runc_argv("exec", "--tty", container_id, *cmd), c.dir)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        c = self._running(container_id)

        async def exit_code() -> int:
            await c.exited.wait()
            return c.status.exit_code

        return await streams.attach(c.dir, c.tty, exit_code)

    async def port_forward(self, sandbox_id: str, port: int) -> PortStream:
        sandbox = self._sandbox(sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeFailure(f"pod sandbox {sandbox_id} is not ready")
        return await streams.port_forward(sandbox.netns, port)

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        c = self._container(container_id)

        async def finished() -> bool:
            return c.exited.is_set() or container_id not in self._containers

        async for chunk in read_log(c.status.log_path, options, finished):
            yield chunk

    async def container_stats(self, container_id: str) -> ContainerStats:
        c = self._container(container_id)
        stats = Cgroup(self.cgroups, c.cgroups_path).stats()
        written = await asyncio.to_thread(_disk_usage, c.dir / "upper")
        return ContainerStats(container_id, self.clock(), stats.cpu_usage_ns, stats.memory_working_set_bytes, written)

    # -- images -------------------------------------------------------------------------------------------
    async def pull_image(self, image: ImageSpec, auth: AuthConfig | None = None) -> str:
        if is_host_image(image.image):
            return HOST_IMAGE_RECORD.repo_digests[0]
        if self.images is None:
            raise ImagePullFailure(f'cannot pull "{image.image}": this node has no image store (only {HOST_IMAGE})')
        credentials = None
        if auth is not None:
            credentials = credentials_from_auth(auth.username, auth.password, auth.auth, auth.registry_token)
        return (await self.images.pull(image.image, "Always", credentials=credentials)).image_ref

    async def image_status(self, image: ImageSpec) -> Image | None:
        if is_host_image(image.image):
            return HOST_IMAGE_RECORD
        found = self.images.get(image.image) if self.images is not None else None
        return found.cri() if found is not None else None

    async def list_images(self) -> list[Image]:
        return [HOST_IMAGE_RECORD, *(i.cri() for i in (self.images.list() if self.images is not None else []))]

    async def remove_image(self, image: ImageSpec) -> None:
        if not is_host_image(image.image) and self.images is not None:
            with contextlib.suppress(NotFoundFailure):
                await self.images.remove(image.image)


# -- helpers ----------------------------------------------------------------------------------------------

def _loads(line: bytes) -> dict[str, object]:
    import json
    try:
        data = json.loads(line or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _copy(status: ContainerStatus) -> ContainerStatus:
    import copy
    return copy.copy(status)


def _apply_exit(status: ContainerStatus, result: dict[str, object]) -> None:
    code = int(str(result.get("exit_code", 255)))
    status.state = ContainerState.EXITED
    status.exit_code = code
    status.finished_at = float(str(result.get("finished_at") or time.time()))
    if result.get("oom_killed"):
        status.reason = "OOMKilled"
    elif status.message and not status.started_at:
        status.reason = "StartError"
    else:
        status.reason = "Completed" if code == 0 else "Error"
    if result.get("message"):
        status.message = str(result["message"])


def _cleanup_container(cgroup: Cgroup | None, directory: Path) -> None:
    if cgroup is not None:
        cgroup.kill_all()
        cgroup.destroy()
    unmount(directory / "rootfs")
    shutil.rmtree(directory, ignore_errors=True)


def _remove_empty_dirs(root: Path) -> None:
    """Remove ``root`` and the directories under it if they hold no files."""
    if not root.is_dir():
        return
    for path, _dirs, _files in sorted(os.walk(root), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _disk_usage(root: Path) -> int:
    total = 0
    for path, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(path, name)).st_blocks * 512
    return total
