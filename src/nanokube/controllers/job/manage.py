"""Bringing a Job's active Pods to the number it wants (kube's ``manageJob``).

A suspended Job loses all its active Pods. Otherwise the Job wants ``min(parallelism, completions -
succeeded)`` active Pods (``parallelism`` until the first success when it has no ``completions``). Surplus
Pods are deleted cheapest first, and for Indexed Jobs duplicates and out-of-range indexes first; a sync either
deletes or creates, never both. Missing Pods are created in doubling batches (1, 2, 4 ...) that stop at the
first failure, after the back-off since the last failure has passed, and for Indexed Jobs for the lowest
indexes neither succeeded, failed, nor active.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nanokube.api.errors import ApiError
from nanokube.api.objects import deep_copy
from nanokube.client.interface import JSON

from . import indexed
from .backoff import delay_for, remaining_per_index
from .indexed import COMPLETION_INDEX, FAILURE_COUNT, IGNORED_FAILURE_COUNT, INDEX_ENV
from .podcontrol import namespace_terminating
from .podfailurepolicy import match
from .pods import TRACKING_FINALIZER, is_ready, is_terminating, meta, removal_order
from .state import (
    JobControllerState,
    SyncContext,
    completions,
    has_backoff_limit_per_index,
    is_indexed,
    job_key,
    only_replace_failed,
    spec,
    suspended,
)

MAX_GENERATED_NAME = 58


def pods_for_removal(job: JSON, active: list[JSON], at_least: int) -> list[JSON]:
    remove: list[JSON] = []
    keep = active
    if is_indexed(job):
        remove, keep = indexed.duplicates_for_removal(active, completions(job) or 0)
    if len(remove) < at_least:
        remove += sorted(keep, key=removal_order)[:at_least - len(remove)]
    return remove


def wanted_active(job: JSON, ctx: SyncContext, active: int) -> int:
    parallelism = int(spec(job).get("parallelism") or 0)
    total = completions(job)
    if total is None:
        return active if ctx.succeeded > 0 else parallelism
    return max(0, min(total - ctx.succeeded, parallelism))


class ManageMixin(JobControllerState):
    async def manage_job(self, ctx: SyncContext) -> tuple[int, BaseException | None]:
        """Create or delete Pods; returns the new number of active Pods and the first write error."""
        job = ctx.job
        active = len(ctx.active_pods)
        key = job_key(job)
        if suspended(job):
            doomed = pods_for_removal(job, ctx.active_pods, active)
            self.expectations.expect_deletions(key, len(doomed))
            deleted, error = await self._delete_pods(ctx, doomed, remove_finalizer=True)
            return active - deleted, error
        want = wanted_active(job, ctx, active)
        doomed = pods_for_removal(job, ctx.active_pods, max(active - want, 0))[:self.settings.max_pods_per_sync]
        if doomed:
            self.expectations.expect_deletions(key, len(doomed))
            deleted, error = await self._delete_pods(ctx, doomed, remove_finalizer=True)
            return active - deleted, error
        terminating = ctx.terminating if only_replace_failed(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        settings = self.settings
        if not has_backoff_limit_per_index(job):
            wait = delay_for(ctx.backoff.failures_after_last_success, ctx.backoff.last_failure, self.now(),
                             settings.pod_failure_backoff, settings.pod_failure_backoff_max)
            if wait > 0:
                ctx.requeue.append(max(wait, settings.sync_batch))
                return active, None
        diff = min(diff, settings.max_pods_per_sync)
        indexes: list[int] | None = None
        if is_indexed(job):
            indexes = self._pending_indexes(ctx, diff)
            if indexes is None:
                return active, None
            diff = len(indexes)
        self.expectations.expect_creations(key, diff)
        created, error = await self._create_pods(ctx, diff, indexes)
        return active + created, error

    def _pending_indexes(self, ctx: SyncContext, count: int) -> list[int] | None:
        job = ctx.job
        total = completions(job) or 0
        not_pending = indexed.with_indexes(ctx.succeeded_indexes, indexed.indexes_of(ctx.active_pods))
        if only_replace_failed(job):
            terminating = [p for p in ctx.pods if is_terminating(p)]
            not_pending = indexed.with_indexes(not_pending, indexed.indexes_of(terminating))
        if ctx.failed_indexes is not None:
            not_pending = indexed.merge(not_pending, ctx.failed_indexes)
        pending = indexed.first_pending(count, total, not_pending)
        if not has_backoff_limit_per_index(job):
            return pending
        now, settings = self.now(), self.settings
        ready_now, soonest = [], None
        for ix in pending:
            wait = remaining_per_index(ctx.delayed_per_index.get(ix), now, settings.pod_failure_backoff,
                                       settings.pod_failure_backoff_max)
            if wait == 0:
                ready_now.append(ix)
            elif soonest is None or wait < soonest:
                soonest = wait
        if ready_now or soonest is None:
            return ready_now
        ctx.requeue.append(max(soonest, settings.sync_batch))
        return None

    def _template(self, job: JSON) -> dict[str, Any]:
        template: dict[str, Any] = deep_copy(spec(job).get("template") or {})
        tmeta = template.setdefault("metadata", {})
        if is_indexed(job):
            field_path = f"metadata.labels['{COMPLETION_INDEX}']"
            pod_spec = template.setdefault("spec", {})
            for group in ("initContainers", "containers"):
                for container in pod_spec.get(group) or []:
                    env = container.setdefault("env", [])
                    if not any(e.get("name") == INDEX_ENV for e in env):
                        env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": field_path}}})
        finalizers = list(tmeta.get("finalizers") or [])
        if TRACKING_FINALIZER not in finalizers:
            tmeta["finalizers"] = [*finalizers, TRACKING_FINALIZER]
        return template

    def _indexed_template(self, ctx: SyncContext, base: dict[str, Any], index: int) -> dict[str, Any]:
        job = ctx.job
        template: dict[str, Any] = deep_copy(base)
        tmeta = template.setdefault("metadata", {})
        tmeta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
        tmeta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
        template.setdefault("spec", {})["hostname"] = f"{meta(job)['name']}-{index}"
        if has_backoff_limit_per_index(job):
            replaced = ctx.delayed_per_index.get(index)
            failures, ignored = 0, 0
            if replaced is not None:
                failures, ignored = indexed.failure_count(replaced), indexed.ignored_failure_count(replaced)
                if match(spec(job).get("podFailurePolicy"), replaced).counts:
                    failures += 1
                else:
                    ignored += 1
            tmeta["annotations"][FAILURE_COUNT] = str(failures)
            if ignored:
                tmeta["annotations"][IGNORED_FAILURE_COUNT] = str(ignored)
        return template

    async def _create_pods(self, ctx: SyncContext, count: int,
                           indexes: list[int] | None) -> tuple[int, BaseException | None]:
        job = ctx.job
        key = job_key(job)
        base = self._template(job)
        prefix = f"{meta(job)['name']}-"[:MAX_GENERATED_NAME]
        created, batch, remaining = 0, 1, count
        pending = list(indexes or [])
        while remaining > 0:
            size = min(batch, remaining)
            calls = []
            for _ in range(size):
                if indexes is not None:
                    ix = pending.pop(0)
                    template = self._indexed_template(ctx, base, ix)
                    calls.append(self.pod_control.create(job, template, indexed.pod_name_prefix(meta(job)["name"], ix)))
                else:
                    calls.append(self.pod_control.create(job, base, prefix))
            results = await asyncio.gather(*calls, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            # A namespace being deleted refuses every Pod: not worth an error (nor the Event kube skips too).
            errors = [r for r in failures if not (isinstance(r, ApiError) and namespace_terminating(r))]
            created += size - len(failures)
            remaining -= size
            if failures:
                for _ in range(len(failures) + remaining):  # failed or never attempted: not expected either
                    self.expectations.creation_observed(key)
                return created, errors[0] if errors else None
            batch *= 2
        return created, None

    async def _delete_pods(self, ctx: SyncContext, pods: list[JSON], *,
                           remove_finalizer: bool) -> tuple[int, BaseException | None]:
        """Delete ``pods`` (first taking the tracking finalizer off when asked); returns how many went and the
        first error. Updates the context's terminating and ready counts."""
        key = job_key(ctx.job)
        results = await asyncio.gather(*(self._delete_one(ctx, p, remove_finalizer) for p in pods),
                                       return_exceptions=True)
        deleted = 0
        first_error: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, BaseException):
                if remove_finalizer:
                    self.expectations.deletion_observed(key)  # the informer will not see this one go
                first_error = first_error or result
                continue
            deleted += 1
            if is_ready(pod):
                ctx.ready -= 1
        ctx.terminating += deleted
        return deleted, first_error

    async def _delete_one(self, ctx: SyncContext, pod: JSON, remove_finalizer: bool) -> None:
        if remove_finalizer:
            await self.pod_control.remove_finalizer(pod)
        await self.pod_control.delete(ctx.job, pod)

    async def delete_active_pods(self, ctx: SyncContext) -> tuple[int, BaseException | None]:
        """Delete every active Pod of a finishing Job, keeping finalizers (tracking removes them)."""
        return await self._delete_pods(ctx, ctx.active_pods, remove_finalizer=False)
