"""What the runtimes whose containers run under a shim share (``native``: runc; ``process``: plain processes).

Both keep their sandboxes and containers by id (``Sandbox``/``Container`` records from state.py), tell
listeners about container events, watch each container's shim for its exit, and serve ``attach`` and ``logs``
from the files the shim keeps (``attach.sock``, the CRI log), and re-adopt their sandboxes after a restart.
``ShimmedRuntime`` holds that bookkeeping and those calls once; a runtime built on it supplies how a container stops (``stop_container``), what a sandbox's
network release is (``_release_network``) and what follows a shim's exit (``_on_shim_exit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from . import streams
from .crilog import read_log
from .interface import (
    POD_UID_LABEL,
    ContainerEvent,
    ContainerState,
    ContainerStatus,
    EventListener,
    EventType,
    ExecSession,
    LogOptions,
    NotFoundFailure,
    PodSandboxStatus,
    RuntimeFailure,
    SandboxState,
)
from .shimctl import unwatch, watch_exit
from .state import Container, Sandbox

log = logging.getLogger(__name__)


class _Shims(Protocol):
    def close(self) -> None: ...


class ShimmedRuntime:
    shims: _Shims

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, Container] = {}
        self._listeners: list[EventListener] = []

    # -- what a runtime on this base supplies ---------------------------------------------------------------
    async def stop_container(self, container_id: str, timeout: float) -> None:
        raise NotImplementedError

    async def _release_network(self, sandbox: Sandbox) -> None:
        raise NotImplementedError

    def _on_shim_exit(self, c: Container) -> None:
        raise NotImplementedError

    # -- events and shutdown --------------------------------------------------------------------------------
    def subscribe(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def _emit(self, c: Container, kind: EventType) -> None:
        event = ContainerEvent(c.status.id, kind, self.clock(), c.status.labels.get(POD_UID_LABEL, ""),
                               c.status.sandbox_id)
        for listener in self._listeners:
            listener(event)

    async def close(self) -> None:
        """Stop watching shims (the agent is going away); containers keep running for the next agent."""
        for c in self._containers.values():
            self._unwatch(c)
        self.shims.close()

    # -- sandboxes ------------------------------------------------------------------------------------------
    def _sandbox(self, sid: str) -> Sandbox:
        found = self._sandboxes.get(sid)
        if found is None:
            raise NotFoundFailure(f"pod sandbox {sid} not found")
        return found

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for c in self._sandbox_containers(sandbox_id):
            await self.stop_container(c.status.id, 0)
        if sandbox.status.state is SandboxState.READY:
            sandbox.status.state = SandboxState.NOT_READY
            await self._release_network(sandbox)
            sandbox.save()

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self._sandbox(sandbox_id).public_status()

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        return [s.public_status() for s in self._sandboxes.values() if pod_uid is None or s.uid == pod_uid]

    def _sandbox_containers(self, sandbox_id: str) -> list[Container]:
        return [c for c in self._containers.values() if c.status.sandbox_id == sandbox_id]

    async def _recover_sandboxes(self, sandbox_dir: Path, remove_unrecorded: Callable[[Path], None]) -> None:
        """After a restart: every sandbox directory with a readable record comes back; one without a record
        is removed (``remove_unrecorded``); one the previous agent died while making has its network released
        and stays not ready."""
        half_made: list[Sandbox] = []
        for d in sorted(sandbox_dir.iterdir()):
            if d.name in self._sandboxes or not d.is_dir():
                continue
            loaded = Sandbox.load(d)
            if loaded is None:
                log.warning("removing sandbox directory %s without a record", d)
                await asyncio.to_thread(remove_unrecorded, d)
                continue
            sandbox, creating = loaded
            self._sandboxes[d.name] = sandbox
            if creating:
                half_made.append(sandbox)
        for sandbox in half_made:
            sandbox.status.state = SandboxState.NOT_READY
            try:
                await self._release_network(sandbox)
            except Exception as err:
                log.warning("releasing the network of half-made sandbox %s: %s", sandbox.status.id, err)
            sandbox.save()

    # -- containers -----------------------------------------------------------------------------------------
    def _container(self, container_id: str) -> Container:
        found = self._containers.get(container_id)
        if found is None:
            raise NotFoundFailure(f"container {container_id} not found")
        return found

    def _running(self, container_id: str) -> Container:
        c = self._container(container_id)
        if c.status.state is not ContainerState.RUNNING:
            raise RuntimeFailure(f"container {container_id} is not running")
        return c

    def _watch(self, c: Container) -> None:
        c.watch = watch_exit(c.shim_pid, lambda: self._on_shim_exit(c))

    def _unwatch(self, c: Container) -> None:
        unwatch(c.watch)
        c.watch = -1

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).public_status()

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.public_status() for c in self._containers.values()
                if sandbox_id is None or c.status.sandbox_id == sandbox_id]

    # -- streams --------------------------------------------------------------------------------------------
    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        c = self._running(container_id)

        async def exit_code() -> int:
            await c.exited.wait()
            return c.status.exit_code

        return await streams.attach(c.dir, c.tty, exit_code)

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[bytes]:
        c = self._container(container_id)

        async def finished() -> bool:
            return c.exited.is_set() or container_id not in self._containers

        async for chunk in read_log(c.status.log_path, options, finished):
            yield chunk
