"""Counting finished Pods with the tracking finalizer (kube's ``trackJobStatusAndRemoveFinalizers``).

Every Job Pod carries ``batch.kubernetes.io/job-tracking`` until the Job has counted it, so a Pod deleted
right after it finished is never lost. Counting is a three-step write that survives a crash at any point:

1. the UIDs of newly finished Pods go into ``status.uncountedTerminatedPods`` (one status write);
2. their finalizers come off;
3. each UID whose finalizer is gone moves from the uncounted lists into ``succeeded``/``failed``.

Indexed Jobs count succeeded indexes in ``completedIndexes`` instead of UIDs. The interim
``FailureTarget``/``SuccessCriteriaMet`` condition is written in step 1, and the final ``Failed``/``Complete``
only once nothing is uncounted or terminating, with its Event.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON

from . import indexed, status
from .podfailurepolicy import match
from .pods import has_tracking_finalizer, meta, phase, uid
from .state import (
    JobControllerState,
    SyncContext,
    completions,
    has_backoff_limit_per_index,
    is_indexed,
    is_pod_failed,
    job_key,
    spec,
)


class TrackingMixin(JobControllerState):
    async def track_status(self, ctx: SyncContext, needs_flush: bool) -> None:
        job = ctx.job
        st = job.setdefault("status", {})
        uncounted = st.setdefault("uncountedTerminatedPods", {})
        is_idx = is_indexed(job)
        pods = sorted(ctx.pods, key=indexed.completion_index) if is_idx else ctx.pods
        with_finalizer = {uid(p) for p in pods if has_tracking_finalizer(p) and uid(p) not in ctx.expected_rm}
        needs_flush = _clean_uncounted(st, with_finalizer) or needs_flush
        to_remove: list[JSON] = []
        new_indexes: list[int] = []
        total = completions(job) or 0
        reached_max = False
        policy = spec(job).get("podFailurePolicy")
        for pod in pods:
            pod_uid = uid(pod)
            if not has_tracking_finalizer(pod) or pod_uid in ctx.expected_rm:
                continue
            failed = is_pod_failed(pod, job)
            if not self._can_remove_finalizer(ctx, pod, failed):
                continue
            to_remove.append(pod)
            if phase(pod) == "Succeeded" and pod_uid not in ctx.uncounted_failed:
                if is_idx:
                    ix = indexed.completion_index(pod)
                    if ix != indexed.UNKNOWN and ix < total and not indexed.has(ctx.prev_succeeded_indexes, ix):
                        new_indexes.append(ix)
                        needs_flush = True
                elif pod_uid not in ctx.uncounted_succeeded:
                    uncounted.setdefault("succeeded", []).append(pod_uid)
                    needs_flush = True
            elif failed or (ctx.finished is not None and ctx.finished["type"] != status.SUCCESS_CRITERIA_MET):
                ix = indexed.completion_index(pod)
                in_range = not is_idx or (ix != indexed.UNKNOWN and ix < total)
                if pod_uid not in ctx.uncounted_failed and in_range and match(policy, pod).counts:
                    uncounted.setdefault("failed", []).append(pod_uid)
                    needs_flush = True
            pending = len(new_indexes) + len(uncounted.get("succeeded") or []) + len(uncounted.get("failed") or [])
            if pending >= self.settings.max_uncounted:
                reached_max = True
                break
        if is_idx:
            needs_flush = self._record_indexes(ctx, new_indexes) or needs_flush
        needs_flush = self._interim_condition(ctx) or needs_flush
        needs_flush = await self._flush_and_remove(ctx, to_remove, with_finalizer, needs_flush)
        finished = not reached_max and self._enact_finished(ctx)
        if finished or needs_flush:
            await self.write_status(ctx)
        if finished:
            await self._record_finished(ctx)

    def _can_remove_finalizer(self, ctx: SyncContext, pod: JSON, failed: bool) -> bool:
        """Once the Job finishes or is deleted, or the Pod succeeded, or failed (unless a per-index Job keeps
        the last failed Pod of an index until its replacement carries the failure count)."""
        if meta(ctx.job).get("deletionTimestamp") or ctx.finished is not None or phase(pod) == "Succeeded":
            return True
        if not failed:
            return False
        if has_backoff_limit_per_index(ctx.job):
            held = ctx.delayed_per_index.get(indexed.completion_index(pod))
            if held is not None and uid(held) == uid(pod):
                return False
        return True

    def _record_indexes(self, ctx: SyncContext, new_indexes: list[int]) -> bool:
        st = ctx.job["status"]
        changed = False
        ctx.succeeded_indexes = indexed.with_indexes(ctx.succeeded_indexes, new_indexes)
        text = indexed.format_indexes(ctx.succeeded_indexes)
        if text != (st.get("completedIndexes") or ""):
            changed = True
        st["succeeded"] = indexed.total(ctx.succeeded_indexes)
        st["completedIndexes"] = text
        failed_text = None if ctx.failed_indexes is None else indexed.format_indexes(ctx.failed_indexes)
        if st.get("failedIndexes") != failed_text:
            changed = True
            if failed_text is None:
                st.pop("failedIndexes", None)
            else:
                st["failedIndexes"] = failed_text
        return changed

    def _interim_condition(self, ctx: SyncContext) -> bool:
        """Write FailureTarget/SuccessCriteriaMet now; the final condition waits in ``ctx.finished``."""
        finished = ctx.finished
        if finished is None:
            return False
        conds = ctx.job["status"].setdefault("conditions", [])
        now = self.now()
        if finished["type"] == status.FAILURE_TARGET:
            conds.append(finished)
            ctx.finished = status.new_condition(status.FAILED, finished["reason"], finished["message"], now)
            return True
        if finished["type"] == status.SUCCESS_CRITERIA_MET:
            changed = False
            if not status.is_true(ctx.job, status.SUCCESS_CRITERIA_MET):
                conds.append(finished)
                changed = True
            ctx.finished = status.new_condition(status.COMPLETE, finished["reason"], finished["message"], now)
            return changed
        return False

    async def _flush_and_remove(self, ctx: SyncContext, to_remove: list[JSON], with_finalizer: set[str],
                                needs_flush: bool) -> bool:
        """Steps 1-3 above; returns whether counters changed that are not written yet."""
        if needs_flush:
            await self.write_status(ctx)
            self.backoff_store.update(ctx.backoff)
            needs_flush = False
        error: BaseException | None = None
        if to_remove:
            key = job_key(ctx.job)
            self.finalizer_expectations.expect_removed(key, [uid(p) for p in to_remove])
            results = await asyncio.gather(*(self.pod_control.remove_finalizer(p) for p in to_remove),
                                           return_exceptions=True)
            for pod, result in zip(to_remove, results, strict=True):
                if isinstance(result, BaseException):
                    self.finalizer_expectations.removal_observed(key, uid(pod))
                    error = error or result
                else:
                    with_finalizer.discard(uid(pod))
        if _clean_uncounted(ctx.job["status"], with_finalizer):
            needs_flush = True
        if error is not None:
            if needs_flush:
                await self.write_status(ctx)
            raise error
        return needs_flush

    def _enact_finished(self, ctx: SyncContext) -> bool:
        finished = ctx.finished
        if finished is None:
            return False
        uncounted = ctx.job["status"].get("uncountedTerminatedPods") or {}
        if uncounted.get("succeeded") or uncounted.get("failed") or ctx.terminating > 0:
            return False
        now = self.now()
        status.ensure_condition(ctx.job, finished["type"], finished["status"], finished["reason"],
                                finished["message"], now)
        if finished["type"] == status.COMPLETE:
            ctx.job["status"]["completionTime"] = finished["lastTransitionTime"]
        return True

    async def _record_finished(self, ctx: SyncContext) -> None:
        finished = ctx.finished
        assert finished is not None
        job = ctx.job
        if finished["type"] == status.COMPLETE:
            total = completions(job)
            if total is not None and status.counter(job, "succeeded") > total:
                await self.recorder.event(job, "Warning", "TooManySucceededPods",
                                          "Too many succeeded pods running after completion count reached")
            await self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            await self.recorder.event(job, "Warning", finished["reason"], finished["message"])

    async def write_status(self, ctx: SyncContext) -> None:
        """PUT /status with the cached resourceVersion (a Conflict makes the worker look again)."""
        body: dict[str, Any] = dict(ctx.job)
        body["status"] = status.wire_status(ctx.job.get("status") or {})
        written = await self.client.update(self.jobs_resource, meta(ctx.job)["namespace"], body,
                                           subresource="status")
        fresh = deep_copy(written)
        fresh.setdefault("status", {}).setdefault("uncountedTerminatedPods", {})
        ctx.job = fresh


def _clean_uncounted(st: dict[str, Any], with_finalizer: set[str]) -> bool:
    """Move uncounted UIDs whose finalizer is gone into the counters; True when any moved."""
    uncounted = st.setdefault("uncountedTerminatedPods", {})
    changed = False
    for name in ("succeeded", "failed"):
        listed = list(uncounted.get(name) or [])
        kept = [u for u in listed if u in with_finalizer]
        if len(kept) != len(listed):
            changed = True
            st[name] = int(st.get(name) or 0) + len(listed) - len(kept)
            uncounted[name] = kept
    return changed
