"""One sync of one Job (kube's ``syncJob``): decide whether it has finished, then act.

In order: count Pods finished since the last sync (through the tracking finalizer, so none is counted
twice); set ``startTime`` on first start; then find a reason to end — an interim ``SuccessCriteriaMet``
already written, a ``FailureTarget`` already written or a ``FailJob`` rule of the pod failure policy
matching a failed Pod, more failures than ``backoffLimit`` (or, for ``restartPolicy: OnFailure``, as many
container restarts), ``activeDeadlineSeconds`` passed, failed indexes, a met success policy. A Job that
ends has its active Pods deleted; one that goes on gets Pods created or deleted (``manage``), the
``Suspended`` condition and Events kept current, and the ``Complete`` condition once enough Pods succeeded.
Finally status and finalizers are brought up to date (``tracking``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON
from nanokube.util.timeutil import parse_rfc3339, rfc3339

from . import indexed, status
from .manage import ManageMixin
from .podfailurepolicy import match
from .pods import finished_time, has_tracking_finalizer, is_active, is_ready, is_terminating, meta, phase, uid
from .state import (
    SyncContext,
    completions,
    has_backoff_limit_per_index,
    is_indexed,
    is_pod_failed,
    spec,
    suspended,
)
from .successpolicy import match as match_success
from .tracking import TrackingMixin


class SyncMixin(ManageMixin, TrackingMixin):
    async def pods_for_job(self, job: JSON) -> list[JSON]:
        raise NotImplementedError

    async def sync_job(self, key: str, cached: JSON) -> float | None:
        job: JSON = _private_copy(cached)
        if status.is_finished(job):
            self.backoff_store.remove(key)
            return None
        mode = spec(job).get("completionMode") or "NonIndexed"
        if mode not in ("NonIndexed", "Indexed"):
            await self.recorder.event(job, "Warning", "UnknownCompletionMode",
                                      "Skipped Job sync because completion mode is unknown")
            return None
        st = job["status"]
        satisfied = self.expectations.satisfied(key)
        pods = await self.pods_for_job(job)
        active_pods = [p for p in pods if is_active(p)]
        uncounted = st["uncountedTerminatedPods"]
        ctx = SyncContext(job=job, pods=pods, active_pods=active_pods, ready=sum(map(is_ready, active_pods)),
                          terminating=sum(map(is_terminating, pods)),
                          uncounted_succeeded=set(uncounted.get("succeeded") or []),
                          uncounted_failed=set(uncounted.get("failed") or []),
                          expected_rm=self.finalizer_expectations.expected(key),
                          backoff=self.backoff_store.new_record(key, [], []))
        active = len(active_pods)
        new_succeeded, new_failed = _new_finished(ctx)
        policy = spec(job).get("podFailurePolicy")
        ctx.succeeded = status.counter(job, "succeeded") + len(new_succeeded) + len(ctx.uncounted_succeeded)
        ctx.failed = (status.counter(job, "failed") + sum(1 for p in new_failed if match(policy, p).counts)
                      + len(ctx.uncounted_failed))
        now = self.now()
        if not st.get("startTime") and not suspended(job):
            st["startTime"] = rfc3339(now)
        ctx.backoff = self.backoff_store.new_record(key, new_succeeded, new_failed)
        self._find_end(ctx, pods)
        suspend_changed = False
        error: BaseException | None = None
        if ctx.finished is not None:
            deleted, error = await self.delete_active_pods(ctx)
            if deleted != active or not satisfied:
                ctx.finished = None  # Pods may be left, or not in the cache yet: end on a later sync
            active -= deleted
        else:
            managed = False
            if satisfied and not meta(job).get("deletionTimestamp"):
                active, error = await self.manage_job(ctx)
                managed = True
            total = completions(job)
            if (ctx.succeeded > 0 if total is None else ctx.succeeded >= total) and active == 0:
                ctx.finished = status.new_condition(status.SUCCESS_CRITERIA_MET, *status.COMPLETIONS_REACHED, now)
            elif managed:
                suspend_changed = await self._suspend_condition(ctx)
        st = ctx.job["status"]
        needs_flush = (suspend_changed or active != int(st.get("active") or 0) or st.get("ready") != ctx.ready
                       or st.get("terminating") != ctx.terminating)
        st.update(active=active, ready=ctx.ready, terminating=ctx.terminating)
        await self.track_status(ctx, needs_flush)
        if error is not None:
            raise error
        return min(ctx.requeue) if ctx.requeue else None

    def _find_end(self, ctx: SyncContext, pods: list[JSON]) -> None:
        job = ctx.job
        now = self.now()
        ctx.finished = _true_condition(job, status.SUCCESS_CRITERIA_MET)
        if ctx.finished is None:
            target = _true_condition(job, status.FAILURE_TARGET)
            if target is not None:
                ctx.finished = status.new_condition(status.FAILED, target.get("reason", ""),
                                                    target.get("message", ""), now)
            elif (message := _fail_job_message(job, pods)) is not None:
                ctx.finished = status.new_condition(status.FAILURE_TARGET, status.POD_FAILURE_POLICY, message, now)
        if ctx.finished is None:
            deadline = spec(job).get("activeDeadlineSeconds")
            started = job["status"].get("startTime")
            if ctx.failed > int(spec(job).get("backoffLimit") or 0) or _past_backoff_on_failure(job, pods):
                ctx.finished = status.new_condition(status.FAILURE_TARGET, *status.BACKOFF_LIMIT_EXCEEDED, now)
            elif deadline is not None and started and not suspended(job):
                left = parse_rfc3339(started) + timedelta(seconds=int(deadline)) - now
                if left <= timedelta(0):
                    ctx.finished = status.new_condition(status.FAILURE_TARGET, *status.DEADLINE_EXCEEDED, now)
                else:
                    ctx.requeue.append(left.total_seconds())
        if is_indexed(job):
            self._indexed_end(ctx, pods)

    def _indexed_end(self, ctx: SyncContext, pods: list[JSON]) -> None:
        job = ctx.job
        total = completions(job) or 0
        now = self.now()
        ctx.prev_succeeded_indexes = indexed.parse_indexes(job["status"].get("completedIndexes"), total)
        fresh = [indexed.completion_index(p) for p in pods
                 if phase(p) == "Succeeded" and has_tracking_finalizer(p)]
        ctx.succeeded_indexes = indexed.with_indexes(ctx.prev_succeeded_indexes,
                                                     [ix for ix in fresh if indexed.UNKNOWN < ix < total])
        ctx.succeeded = indexed.total(ctx.succeeded_indexes)
        if has_backoff_limit_per_index(job):
            ctx.failed_indexes = _failed_indexes(job, pods, total)
            failed_count = indexed.total(ctx.failed_indexes)
            max_failed = spec(job).get("maxFailedIndexes")
            if ctx.finished is None:
                if max_failed is not None and failed_count > int(max_failed):
                    ctx.finished = status.new_condition(status.FAILURE_TARGET, *status.MAX_FAILED_INDEXES_EXCEEDED,
                                                        now)
                elif failed_count > 0 and failed_count + indexed.total(ctx.succeeded_indexes) >= total:
                    ctx.finished = status.new_condition(status.FAILURE_TARGET, *status.FAILED_INDEXES, now)
            ctx.delayed_per_index = _delayed_per_index(ctx)
        if ctx.finished is None:
            message = match_success(spec(job).get("successPolicy"), total, ctx.succeeded_indexes)
            if message is not None:
                ctx.finished = status.new_condition(status.SUCCESS_CRITERIA_MET, status.SUCCESS_POLICY, message, now)

    async def _suspend_condition(self, ctx: SyncContext) -> bool:
        job, now = ctx.job, self.now()
        if suspended(job):
            if status.ensure_condition(job, status.SUSPENDED, "True", "JobSuspended", "Job suspended", now):
                await self.recorder.event(job, "Normal", "Suspended", "Job suspended")
                return True
            return False
        if status.ensure_condition(job, status.SUSPENDED, "False", "JobResumed", "Job resumed", now):
            await self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            job["status"]["startTime"] = rfc3339(now)  # activeDeadlineSeconds counts from the resume
            return True
        return False


def _private_copy(cached: JSON) -> JSON:
    job: JSON = deep_copy(cached)
    st = job.setdefault("status", {})
    st["uncountedTerminatedPods"] = dict(st.get("uncountedTerminatedPods") or {})
    return job


def _true_condition(job: JSON, kind: str) -> dict[str, Any] | None:
    cond = status.find(job, kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def _valid(ctx: SyncContext, pod: JSON, skip: set[str]) -> bool:
    """A Pod not counted yet: it has the finalizer, is not listed as uncounted, and has a valid index."""
    pod_uid = uid(pod)
    if not has_tracking_finalizer(pod) or pod_uid in skip or pod_uid in ctx.expected_rm:
        return False
    if is_indexed(ctx.job):
        ix = indexed.completion_index(pod)
        return indexed.UNKNOWN < ix < (completions(ctx.job) or 0)
    return True


def _new_finished(ctx: SyncContext) -> tuple[list[JSON], list[JSON]]:
    succeeded = [p for p in ctx.pods if _valid(ctx, p, ctx.uncounted_succeeded) and phase(p) == "Succeeded"]
    failed = [p for p in ctx.pods if _valid(ctx, p, ctx.uncounted_failed) and is_pod_failed(p, ctx.job)]
    return succeeded, failed


def _fail_job_message(job: JSON, pods: list[JSON]) -> str | None:
    policy = spec(job).get("podFailurePolicy")
    if policy is None:
        return None
    for pod in pods:
        if is_pod_failed(pod, job):
            verdict = match(policy, pod)
            if verdict.fail_job_message is not None:
                return verdict.fail_job_message
    return None


def _past_backoff_on_failure(job: JSON, pods: list[JSON]) -> bool:
    """For ``restartPolicy: OnFailure``: container restarts of running Pods reached ``backoffLimit``."""
    if ((spec(job).get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if phase(pod) in ("Running", "Pending"):
            pst = pod.get("status") or {}
            for cs in (pst.get("initContainerStatuses") or []) + (pst.get("containerStatuses") or []):
                restarts += int((cs or {}).get("restartCount") or 0)
    limit = int(spec(job).get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit


def _failed_indexes(job: JSON, pods: list[JSON], total: int) -> indexed.Intervals:
    previous = indexed.parse_indexes(job["status"].get("failedIndexes"), total)
    fresh = [indexed.completion_index(p) for p in pods if has_tracking_finalizer(p) and _index_failed(job, p)]
    return indexed.with_indexes(previous, [ix for ix in fresh if indexed.UNKNOWN < ix < total])


def _index_failed(job: JSON, pod: JSON) -> bool:
    if not is_pod_failed(pod, job):
        return False
    verdict = match(spec(job).get("podFailurePolicy"), pod)
    if verdict.action == "FailIndex":
        return True
    return verdict.counts and indexed.failure_count(pod) >= int(spec(job).get("backoffLimitPerIndex") or 0)


def _delayed_per_index(ctx: SyncContext) -> dict[int, JSON]:
    """Per index, the last failed Pod to keep (finalizer on) until its replacement exists."""
    active = indexed.indexes_of(ctx.active_pods)
    held: dict[int, JSON] = {}
    for pod in ctx.pods:
        if not _valid(ctx, pod, set()) or not is_pod_failed(pod, ctx.job):
            continue
        ix = indexed.completion_index(pod)
        if indexed.has(ctx.succeeded_indexes, ix) or indexed.has(ctx.failed_indexes, ix) or ix in active:
            continue
        last = held.get(ix)
        if last is None or (indexed.absolute_failure_count(last) <= indexed.absolute_failure_count(pod)
                            and not _finished_before(pod, last)):
            held[ix] = pod
    return held


def _finished_before(a: JSON, b: JSON) -> bool:
    return finished_time(a) < finished_time(b)
