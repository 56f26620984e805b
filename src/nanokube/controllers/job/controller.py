"""The Job controller: Jobs run Pods to completion (``pkg/controller/job``).

Informers on Jobs and Pods only enqueue keys: a Job's ``namespace/name`` to sync it, or
``("orphan", namespace/name)`` for a Pod that still holds the tracking finalizer although no unfinished Job
owns it any more (its Job finished or was deleted, or the garbage collector took its owner reference), whose
finalizer is then removed so the Pod can go. Pod events also settle the expectations ``manage`` waits on.

A Job's Pods are those whose controller reference names it and whose labels its selector still matches;
orphans its selector matches are adopted (owner reference and finalizer added) and owned Pods it no longer
matches are released, as kube's ``PodControllerRefManager`` does. An index from owner uid to Pod keys keeps
that lookup cheap however many Pods the namespace holds.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from datetime import timedelta

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.api.labels import selector_from_label_selector
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client
from nanokube.util import timeutil

from ..base import Controller
from . import status
from .backoff import BackoffStore
from .expectations import Expectations, FinalizerExpectations
from .podcontrol import PodControl
from .pods import controller_ref, deleting, has_tracking_finalizer, meta, uid
from .state import Clock, JobSettings, job_key, spec
from .sync import SyncMixin

log = logging.getLogger(__name__)
JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"


class JobController(SyncMixin, Controller):
    name = "job-controller"

    def __init__(self, client: Client, *, settings: JobSettings | None = None, clock: Clock | None = None) -> None:
        Controller.__init__(self, client)
        self.settings = settings or JobSettings()
        self.workers = self.settings.workers
        self.now = clock or timeutil.now
        jobs = client.registry.get("batch", "v1", "jobs")
        pods = client.registry.get("", "v1", "pods")
        assert jobs is not None and pods is not None
        self.jobs_resource = jobs
        self.recorder = EventRecorder(client, "job-controller")
        self.pod_control = PodControl(client, self.recorder)
        self.expectations = Expectations()
        self.finalizer_expectations = FinalizerExpectations()
        self.backoff_store = BackoffStore()
        self._owned: dict[str, set[str]] = {}  # owner uid -> pod keys
        self._orphans: dict[str, set[str]] = {}  # namespace -> keys of pods without a controller
        self.jobs = self.informer(Informer(client, jobs))
        self.jobs.add_handler(self._on_job)
        self.pods = self.informer(Informer(client, pods))
        self.pods.add_handler(self._on_pod)

    # -- queueing ---------------------------------------------------------------------------------------
    def _enqueue_batched(self, key: str) -> None:
        self.queue.add_after(key, self.settings.sync_batch)

    def _enqueue_orphan(self, pod: JSON) -> None:
        self.queue.add(("orphan", object_key(pod)))

    def _resolve(self, namespace: str, ref: dict[str, object]) -> JSON | None:
        if ref.get("kind") != "Job":
            return None
        job = self.jobs.get(f"{namespace}/{ref.get('name')}")
        if job is None or uid(job) != ref.get("uid"):
            return None
        return job

    # -- job events -------------------------------------------------------------------------------------
    def _on_job(self, kind: str, job: JSON, old: JSON | None) -> None:
        key = job_key(job)
        if kind == "ADDED":
            self.queue.add(key)
            return
        if kind == "DELETED":
            self.queue.add(key)
            self._cleanup_pod_finalizers(job)
            return
        if old is not None and meta(old).get("generation") == meta(job).get("generation"):
            self._enqueue_batched(key)
        else:
            self.queue.add(key)
        if status.is_finished(job):
            self._cleanup_pod_finalizers(job)
        deadline = spec(job).get("activeDeadlineSeconds")
        started = (job.get("status") or {}).get("startTime")
        if deadline is not None and started and (old is None or spec(old).get("activeDeadlineSeconds") != deadline):
            left = timeutil.parse_rfc3339(started) + timedelta(seconds=int(deadline)) - self.now()
            self.queue.add_after(key, left.total_seconds())

    def _cleanup_pod_finalizers(self, job: JSON) -> None:
        for key in list(self._owned.get(uid(job), ())):
            pod = self.pods.get(key)
            if pod is not None and has_tracking_finalizer(pod):
                self.queue.add(("orphan", key))

    # -- pod events -------------------------------------------------------------------------------------
    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        self._reindex(kind, pod, old)
        if kind == "ADDED":
            self._pod_added(pod)
        elif kind == "MODIFIED":
            self._pod_updated(pod, old)
        else:
            self._pod_deleted(pod, final=True)

    def _reindex(self, kind: str, pod: JSON, old: JSON | None) -> None:
        key = object_key(pod)
        for previous in (old, pod if kind == "DELETED" else None):
            if previous is None:
                continue
            ref = controller_ref(previous)
            if ref is not None:
                self._owned.get(str(ref.get("uid")), set()).discard(key)
            else:
                self._orphans.get(meta(previous).get("namespace", ""), set()).discard(key)
        if kind == "DELETED":
            return
        ref = controller_ref(pod)
        if ref is not None:
            self._owned.setdefault(str(ref.get("uid")), set()).add(key)
        else:
            self._orphans.setdefault(meta(pod).get("namespace", ""), set()).add(key)

    def _pod_added(self, pod: JSON) -> None:
        if deleting(pod):
            self._pod_deleted(pod, final=False)
            return
        ref = controller_ref(pod)
        if ref is not None:
            job = self._resolve(meta(pod).get("namespace", ""), ref)
            if job is not None:
                self.expectations.creation_observed(job_key(job))
                self._enqueue_batched(job_key(job))
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        for job in self._matching_jobs(pod):
            self._enqueue_batched(job_key(job))

    def _pod_updated(self, pod: JSON, old: JSON | None) -> None:
        if old is not None and meta(old).get("resourceVersion") == meta(pod).get("resourceVersion"):
            return
        if deleting(pod):
            self._pod_deleted(pod, final=False)
            return
        namespace = meta(pod).get("namespace", "")
        removed = not has_tracking_finalizer(pod)
        ref, old_ref = controller_ref(pod), controller_ref(old) if old is not None else None
        if old_ref is not None and old_ref != ref:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                if removed:
                    self.finalizer_expectations.removal_observed(job_key(previous), uid(pod))
                self._enqueue_batched(job_key(previous))
        if ref is not None:
            job = self._resolve(namespace, ref)
            if job is not None:
                if removed:
                    self.finalizer_expectations.removal_observed(job_key(job), uid(pod))
                self._enqueue_batched(job_key(job))
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        labels_changed = old is None or meta(old).get("labels") != meta(pod).get("labels")
        if labels_changed or old_ref != ref:
            for job in self._matching_jobs(pod):
                self._enqueue_batched(job_key(job))

    def _pod_deleted(self, pod: JSON, *, final: bool) -> None:
        ref = controller_ref(pod)
        finalizer = has_tracking_finalizer(pod)
        job = self._resolve(meta(pod).get("namespace", ""), ref) if ref is not None else None
        if job is None or status.is_finished(job):
            if finalizer:
                self._enqueue_orphan(pod)
            return
        key = job_key(job)
        self.expectations.deletion_observed(key)
        if final or not finalizer:
            self.finalizer_expectations.removal_observed(key, uid(pod))
        self._enqueue_batched(key)

    def _matching_jobs(self, pod: JSON) -> list[JSON]:
        namespace = meta(pod).get("namespace", "")
        labels = meta(pod).get("labels") or {}
        if not labels:
            return []
        return [job for job in self.jobs.items() if meta(job).get("namespace") == namespace
                and selector_from_label_selector(spec(job).get("selector")).matches(labels)]

    # -- sync -------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> float | None:
        if isinstance(key, tuple):
            await self._sync_orphan(str(key[1]))
            return None
        name = str(key)
        job = self.jobs.get(name)
        if job is None:
            self.expectations.forget(name)
            self.finalizer_expectations.forget(name)
            self.backoff_store.remove(name)
            return None
        managed_by = spec(job).get("managedBy")
        if managed_by and managed_by != JOB_CONTROLLER_NAME:
            return None
        return await self.sync_job(name, job)

    async def _sync_orphan(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return
            job = self._resolve(meta(pod).get("namespace", ""), ref)
            if job is not None:
                managed_by = spec(job).get("managedBy")
                if (managed_by and managed_by != JOB_CONTROLLER_NAME) or not status.is_finished(job):
                    return
        await self.pod_control.remove_finalizer(pod)

    async def pods_for_job(self, job: JSON) -> list[JSON]:
        """The Job's Pods, adopting orphans its selector matches and releasing owned Pods it does not."""
        selector = selector_from_label_selector(spec(job).get("selector"))
        namespace = meta(job).get("namespace", "")
        job_deleting = deleting(job)
        result: list[JSON] = []
        for key in sorted(self._owned.get(uid(job), ())):
            pod = self.pods.get(key)
            if pod is None:
                continue
            if selector.matches(meta(pod).get("labels") or {}):
                result.append(pod)
            elif not job_deleting:
                await self.pod_control.release(job, pod)
        for key in sorted(self._orphans.get(namespace, ())):
            pod = self.pods.get(key)
            if pod is None or deleting(pod) or job_deleting:
                continue
            if not selector.matches(meta(pod).get("labels") or {}):
                continue
            adopted = await self._adopt(job, pod)
            if adopted is not None:
                result.append(adopted)
        return result

    async def _adopt(self, job: JSON, pod: JSON) -> JSON | None:
        try:
            fresh = await self.client.get(self.jobs_resource, meta(job)["namespace"], meta(job)["name"])
        except NotFound:
            return None
        if uid(fresh) != uid(job) or deleting(fresh):
            return None
        try:
            return await self.pod_control.adopt(job, pod)
        except (Conflict, NotFound):
            return None
        except ApiError as err:
            log.warning("job %s: could not adopt pod %s: %s", job_key(job), object_key(pod), err)
            return None
