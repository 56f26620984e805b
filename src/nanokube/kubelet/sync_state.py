"""What the Pod syncer's parts share: its settings, the wake-up time a sync asks for, what it remembers of
each Pod between syncs, and the queue its Events are written from (``BackgroundEvents``).

``PodSyncer`` (sync.py) orchestrates a Pod; ``ContainerRunner`` (sync_containers.py) pulls, starts, restarts
and stops its containers. Both read and write the same per-Pod memory (waiting reasons shown in the status,
containers killed by a probe, failed pulls), so it lives here, where neither module has to import the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)
JSON = dict[str, Any]


@dataclass
class SyncSettings:
    node_name: str
    host_ips: tuple[str, ...]
    runtime_name: str = "fake"
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    image_backoff_initial: float = 1.0


@dataclass
class Wake:
    """When a sync wants the Pod looked at again: the soonest of what its steps asked for (None: not at all)."""

    at: float | None = None

    def soon(self, seconds: float) -> None:
        seconds = max(seconds, 0.01)
        self.at = seconds if self.at is None else min(self.at, seconds)


@dataclass
class PodMemory:
    """What the syncer remembers of a Pod between syncs: waiting reasons by container name, the ids of
    containers it killed for failing a liveness or startup probe (restarted whatever their exit code), and
    when each image's last pull failed."""

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    probe_killed: set[str] = field(default_factory=set)
    pull_failed: dict[str, float] = field(default_factory=dict)  # image -> when its last pull failed


class PodMemories:
    """``PodMemory`` by Pod uid, made on first write and dropped by ``forget``."""

    def __init__(self) -> None:
        self._by_uid: dict[str, PodMemory] = {}

    def get(self, uid: str) -> PodMemory | None:
        return self._by_uid.get(uid)

    def of(self, uid: str) -> PodMemory:
        return self._by_uid.setdefault(uid, PodMemory())

    def forget(self, uid: str) -> None:
        self._by_uid.pop(uid, None)

    def set_waiting(self, pod: JSON, name: str, reason: str, message: str) -> None:
        """The container shows as waiting with this reason until ``clear_waiting`` (it started)."""
        self.of(pod["metadata"]["uid"]).waiting[name] = (reason, message)

    def clear_waiting(self, pod: JSON, name: str) -> None:
        memory = self.get(pod["metadata"]["uid"])
        if memory is not None:
            memory.waiting.pop(name, None)

    def probe_killed(self, uid: str, container_id: str) -> bool:
        memory = self.get(uid)
        return memory is not None and container_id in memory.probe_killed


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def pod_grace(pod: JSON) -> int:
    """Seconds the Pod's containers get to stop: the deletion's grace period, else the spec's, else 30."""
    meta, spec = pod["metadata"], pod["spec"]
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    return 30 if grace is None else int(grace)


class EventSink(Protocol):
    """Where Events go: ``EventRecorder.event`` (client/events.py), which never raises."""

    async def event(self, obj: JSON, type_: str, reason: str, message: str) -> None: ...


class BackgroundEvents:
    """Records the kubelet's Events off the Pod's critical path: ``event`` queues and returns, writers send
    each Pod's Events in the order they were queued (Pods in parallel, at most ``writers`` writes at a time).

    Each Event is an API write (a store commit with its fsync); awaited inside a sync, three of them (Pulled,
    Created, Started) stood between a Pod's creation and its Running status. Nothing is dropped here: when
    ``limit`` Events are queued, ``event`` waits for room (a slow API server slows the syncs, as before);
    ``flush`` waits for everything queued so far, and after ``close`` (which flushes) Events are written
    before ``event`` returns. What the recorder itself drops (its spam filter) is its own business."""

    def __init__(self, sink: EventSink, *, limit: int = 1000, writers: int = 8) -> None:
        self.sink = sink
        self._room = asyncio.Semaphore(limit)
        self._writers = asyncio.Semaphore(writers)
        self._queues: dict[str, deque[tuple[JSON, str, str, str]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        """Queue an Event about ``obj`` (only its reference is kept: kind, apiVersion, name, namespace, uid,
        resourceVersion); waits only while the queue is full, or for the write itself once closed."""
        ref = reference(obj)
        if self._closed:
            await self.sink.event(ref, type_, reason, message)
            return
        await self._room.acquire()
        meta = ref["metadata"]
        key = meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(key, queue), name=f"events {key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((ref, type_, reason, message))

    async def _drain(self, key: str, queue: deque[tuple[JSON, str, str, str]]) -> None:
        try:
            while queue:
                async with self._writers:
                    try:
                        await self.sink.event(*queue[0])
                    except Exception:  # the recorder logs and drops what it cannot write; anything else too
                        log.exception("could not record event %s for %s", queue[0][2], key)
                queue.popleft()
                self._room.release()
        finally:
            if self._queues.get(key) is queue:  # no await since the loop saw it empty: nothing was added
                del self._queues[key]

    async def flush(self) -> None:
        """Return when every Event queued before this call has been written (or given up on)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Write what is queued; Events recorded afterwards are written before ``event`` returns."""
        self._closed = True
        await self.flush()


def reference(obj: JSON) -> JSON:
    """What an Event needs of its object, copied (the object may change while the Event waits)."""
    meta = obj.get("metadata") or {}
    return {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta}}
