"""The scheduler: pop a pod, run the framework against the snapshot, assume it on the chosen node, bind it.

One loop does the scheduling cycles, one pod at a time and without awaiting anything, so every cycle sees a
consistent snapshot that already includes the pods chosen before it (``Snapshot.assume``). Binding cycles
(Permit, PreBind, Bind through ``pods/binding``, then the ``Scheduled`` event) run in a pool of binder tasks
behind a bounded queue, as kube binds in goroutines; a failed binding takes the assumption back and requeues the
pod with backoff. A pod that fits nowhere goes through PostFilter (preemption), then gets kube's
``PodScheduled=False/Unschedulable`` condition (with the nominated node, if preemption found one) and a
``FailedScheduling`` Warning event with the FitError text.

Pods whose ``spec.schedulerName`` is not ours are left alone. Entry point::

    await Scheduler(client, SchedulerSettings()).run(stop=stop)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.client.events import EventRecorder
from nanokube.client.interface import Client
from nanokube.util.timeutil import rfc3339

from . import queue as q
from .feeds import Feeds
from .framework import Code, CycleState, Status, fit_error_message
from .handle import Handle
from .plugins import ProfileOptions, default_profile
from .plugins.binder import BIND_ERROR_KEY
from .podinfo import PodInfo
from .queue import QueuedPod, SchedulingQueue
from .resources import resource_list
from .runtime import Framework, ScheduleResult, WaitingPod
from .snapshot import Snapshot

log = logging.getLogger(__name__)


@dataclass
class SchedulerSettings:
    scheduler_name: str = "default-scheduler"
    profile: ProfileOptions = field(default_factory=ProfileOptions)
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    max_unschedulable: float = 300.0  # retry pods unschedulable this long even without a cluster change
    pop_from_backoff: bool = True  # when nothing is active, retry pods waiting out a backoff early
    flush_interval: float = 1.0
    bind_workers: int = 8
    bind_queue: int = 512
    # Bindings not yet seen back through the pod watch: past this many the loop waits for its informer, so a
    # burst never overruns the watch buffer (which would cost a relist of every pod).
    max_unconfirmed: int = 1000
    scheduled_events: bool = True  # the "Successfully assigned ns/pod to node" event per pod
    seed: int | None = None  # for the tie-breaking and preemption randomness


@dataclass
class _Binding:
    qp: QueuedPod
    state: CycleState
    node: str
    cycle: int
    waiting: WaitingPod | None


def fits_new_node(pod: PodInfo, event: str, obj: object) -> bool:
    """NodeResourcesFit's queueing hint: a node added or resized matters only if the pod could fit on it empty."""
    if event not in (q.NODE_ADD, q.NODE_ALLOCATABLE) or not isinstance(obj, dict):
        return True
    status = obj.get("status") or {}
    allocatable = resource_list(status.get("allocatable") or status.get("capacity"))
    return all(n <= allocatable.get(name, 0) for name, n in pod.requests.items() if n)


class Scheduler:
    def __init__(self, client: Client, settings: SchedulerSettings | None = None) -> None:
        self.client = client
        self.settings = s = settings or SchedulerSettings()
        self.rng = random.Random(s.seed)
        self.snapshot = Snapshot()
        self.queue = SchedulingQueue(initial_backoff=s.initial_backoff, max_backoff=s.max_backoff,
                                     max_unschedulable=s.max_unschedulable, pop_from_backoff=s.pop_from_backoff,
                                     hints={"NodeResourcesFit": fits_new_node})
        self.feeds = Feeds(client, self.snapshot, self.queue, s.scheduler_name)
        self.recorder = EventRecorder(client, s.scheduler_name)
        self.handle = Handle(client, dict(self.feeds.caches()), self.recorder, s.scheduler_name)
        self.snapshot.namespace_labels = self.handle.namespace_labels
        profile = default_profile(self.handle, s.profile, lambda: self.framework, submit=self._submit, rng=self.rng)
        self.framework = Framework(profile, rng=self.rng)
        pods = client.registry.get("", "v1", "pods")
        assert pods is not None
        self.pods = pods
        self.stats: Counter[str] = Counter()
        self.ready = asyncio.Event()
        self._binds: asyncio.Queue[_Binding] = asyncio.Queue(maxsize=s.bind_queue)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._binding = 0  # binding cycles under way (their pods are assumed, not yet bound)

    # -- running --------------------------------------------------------------------------------------------

    async def run(self, *, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(i.run(stop=stop), name=f"scheduler-informer-{p}")
                 for p, i in self.feeds.informers.items()]
        try:
            synced: asyncio.Future[Any] = asyncio.gather(*(i.synced.wait() for i in self.feeds.informers.values()))
            stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
            await asyncio.wait({synced, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if stop.is_set():
                synced.cancel()
                return
            tasks += [asyncio.create_task(self._binder(), name="scheduler-binder")
                      for _ in range(self.settings.bind_workers)]
            tasks.append(asyncio.create_task(self._flusher(), name="scheduler-flush"))
            tasks.append(asyncio.create_task(self._loop(), name="scheduler-loop"))
            self.ready.set()
            await stop.wait()
        finally:
            self.queue.close()
            for task in [*tasks, *self._tasks]:
                task.cancel()
            for task in [*tasks, *self._tasks]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _loop(self) -> None:
        while True:
            qp = await self.queue.pop()
            if qp is None:
                return
            try:
                binding = self.schedule_one(qp)
            except Exception:
                log.exception("scheduling %s failed", qp.info.key)
                self.queue.requeue(qp, self.queue.scheduling_cycle, set(), error=True)
                binding = None
            if binding is not None:
                await self._binds.put(binding)
            await asyncio.sleep(0)  # let binders and informers run between cycles
            if self._unconfirmed() > self.settings.max_unconfirmed:
                await self._catch_up()

    def _unconfirmed(self) -> int:
        """Pods bound (the write done) whose binding the informer has not delivered yet."""
        return len(self.snapshot.assumed) - self._binding

    async def _catch_up(self) -> None:
        """Give the pod informer time to confirm our bindings (at most a second: it may be relisting)."""
        deadline = asyncio.get_running_loop().time() + 1.0
        while self._unconfirmed() > self.settings.max_unconfirmed // 2:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.001)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            self.queue.flush()

    def _submit(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduler background write failed", exc_info=task.exception())

    # -- the scheduling cycle -------------------------------------------------------------------------------

    def schedule_one(self, qp: QueuedPod) -> _Binding | None:
        """One scheduling cycle; returns the binding to run, or None when the pod failed (and was requeued)."""
        pod = qp.info
        if pod.uid in self.snapshot.pods or pod.terminating:
            self.queue.done(pod.uid)
            return None
        self.stats["attempts"] += 1
        cycle = self.queue.scheduling_cycle
        state = CycleState()
        result = self.framework.schedule(state, pod, self.snapshot)
        if not result.node:
            self._unschedulable(qp, state, result, cycle)
            return None
        self.snapshot.assume(pod, result.node)
        status = self.framework.reserve(state, pod, result.node)
        waiting: WaitingPod | None = None
        if status.success:
            status, waiting = self.framework.permit(state, pod, result.node)
        if not status.success and status.code != Code.WAIT:
            self.framework.unreserve(state, pod, result.node)
            self.snapshot.forget(pod.uid)
            self._failed(qp, cycle, status, {status.plugin})
            return None
        self._binding += 1
        return _Binding(qp, state, result.node, cycle, waiting)

    def _unschedulable(self, qp: QueuedPod, state: CycleState, result: ScheduleResult, cycle: int) -> None:
        pod = qp.info
        diagnosis = result.diagnosis
        status = result.status or Status(Code.UNSCHEDULABLE)
        if diagnosis is None:
            error = status.code == Code.ERROR
            self._failed(qp, cycle, status, set() if error else {""}, error=error)
            return
        nominated: str | None = None
        if self.framework.profile.post_filter:
            found, post = self.framework.post_filter(state, pod, self.snapshot, diagnosis)
            if not post.success:
                diagnosis.post_filter_msg = post.message()
            if found is not None:
                nominated = found.nominated_node
        if nominated is not None:
            self.snapshot.nominate(pod, nominated)
        message = fit_error_message(diagnosis.num_nodes, diagnosis)
        self.stats["unschedulable"] += 1
        self.queue.requeue(qp, cycle, diagnosis.unschedulable_plugins or {""})
        self._submit(self._report(pod, "Unschedulable", message, nominated))

    def _failed(self, qp: QueuedPod, cycle: int, status: Status, rejected_by: set[str], *,
                error: bool | None = None) -> None:
        error = status.code == Code.ERROR if error is None else error
        self.stats["errors" if error else "unschedulable"] += 1
        self.queue.requeue(qp, cycle, rejected_by, error=error)
        self._submit(self._report(qp.info, "SchedulerError" if error else "Unschedulable", status.message(), None))

    async def _report(self, pod: PodInfo, reason: str, message: str, nominated: str | None) -> None:
        """The PodScheduled=False condition (and nominated node) on the pod, and a FailedScheduling event."""
        await self.recorder.event(pod.pod, "Warning", "FailedScheduling", message)
        status = pod.pod.get("status") or {}
        current: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
        patch: dict[str, Any] = {}
        if (current.get("status"), current.get("reason"), current.get("message")) != ("False", reason, message):
            patch["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                                    "lastProbeTime": None, "lastTransitionTime": rfc3339()}]
        if nominated is not None and (status.get("nominatedNodeName") or "") != nominated:
            patch["nominatedNodeName"] = nominated or None
        if not patch:
            return
        try:
            await self.client.patch(self.pods, pod.namespace, pod.name, {"status": patch}, patch_type="strategic",
                                    subresource="status")
        except NotFound:
            return
        except ApiError as err:
            log.warning("could not update the status of pod %s: %s", pod.key, err)

    # -- the binding cycle ----------------------------------------------------------------------------------

    async def _binder(self) -> None:
        while True:
            binding = await self._binds.get()
            delayed: list[Any] = (binding.state.data.get("VolumeBinding") or ([], []))[1]
            if binding.waiting is not None or delayed:
                self._submit(self._bind_cycle(binding))  # may wait long: not in the shared worker
                continue
            try:
                await self._bind_cycle(binding)
            except Exception:
                log.exception("binding %s failed", binding.qp.info.key)

    async def _bind_cycle(self, b: _Binding) -> None:
        try:
            await self._bind(b)
        finally:
            self._binding -= 1

    async def _bind(self, b: _Binding) -> None:
        pod = b.qp.info
        status = Status()
        if b.waiting is not None:
            status = await self.framework.wait_on_permit(b.waiting)
        if status.success:
            status = await self.framework.pre_bind(b.state, pod, b.node)
            if not status.success and status.code == Code.ERROR:
                status = Status(Code.ERROR, (f'running PreBind plugin "{status.plugin}": {status.message()}',),
                                status.plugin)
        if status.success:
            status = await self.framework.bind(b.state, pod, b.node)
            if not status.success:
                status = Status(Code.ERROR, (f'running Bind plugin "{status.plugin}": {status.message()}',),
                                status.plugin)
        if status.success:
            self.framework.post_bind(b.state, pod, b.node)
            self.queue.done(pod.uid)
            self.snapshot.clear_nomination(pod.uid)
            self.stats["scheduled"] += 1
            if self.settings.scheduled_events:
                await self.recorder.event(pod.pod, "Normal", "Scheduled",
                                          f"Successfully assigned {pod.namespace}/{pod.name} to {b.node}")
            return
        self.framework.unreserve(b.state, pod, b.node)
        self.snapshot.forget(pod.uid)
        self.queue.move(q.POD_DELETE)  # the resources it held are free again
        err = b.state.data.get(BIND_ERROR_KEY)
        if b.qp.deleted or isinstance(err, NotFound) or (isinstance(err, Conflict) and "already" in str(err)):
            self.queue.done(pod.uid)
            return
        self._failed(b.qp, b.cycle, status, {status.plugin}, error=status.code == Code.ERROR)
