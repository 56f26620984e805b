"""One pass of the StatefulSet control loop over its Pods (``updateStatefulSet`` in kube).

The set's Pods are split into *replicas* (ordinals in ``[start, start + replicas)``, a missing one stood in for
by the Pod the set would create) and *condemned* ones (ordinals beyond, highest first). Then, in order:

1. each replica: a failed or succeeded Pod is deleted (its successor is made once it is gone, so two Pods of
   one name never coexist); a missing one is created (claims first); its identity, storage and claim references
   are restored. With ``OrderedReady`` the pass stops at the first replica that is missing, terminating, or not
   Running, Ready and available for ``minReadySeconds``: ordinal *i* is only made once 0..i-1 are available.
2. condemned Pods get their claims' references for ``whenScaled``, then are deleted: with ``OrderedReady`` one
   at a time from the highest, waiting for each to be gone, and only while the rest are healthy.
3. ``RollingUpdate``: Pods at or above the partition whose revision is not the update revision are deleted
   (they come back at the update revision in step 1), highest ordinal first, never leaving more than
   ``maxUnavailable`` replicas unavailable. ``OnDelete`` stops before this step.

``Parallel`` does steps 1 and 2 for all Pods at once (in batches of 1, 2, 4, ...) and does not wait.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import datetime

from nanokube.api.errors import ApiError
from nanokube.client.interface import JSON

from . import status as set_status
from .history import apply_revision
from .identity import (
    allows_burst,
    available_in,
    identity_matches,
    in_ordinal_range,
    is_available,
    is_created,
    is_running_and_ready,
    is_terminating,
    is_unavailable,
    min_ready_seconds,
    new_versioned_pod,
    ordinal,
    phase,
    replicas,
    revision_of,
    spec,
    start_ordinal,
    storage_matches,
)
from .podcontrol import StatefulPodControl

MAX_BATCH = 500


class SetUpdate:
    """One pass over one set. ``run`` returns the status to record and the error that cut the pass short."""

    def __init__(self, control: StatefulPodControl, sts: JSON, current: JSON, update: JSON, collision_count: int,
                 now: datetime) -> None:
        self.control = control
        self.sts = sts
        self.current_set = apply_revision(sts, current)
        self.update_set = apply_revision(sts, update)
        self.current_name = current["metadata"]["name"]
        self.update_name = update["metadata"]["name"]
        self.monotonic = not allows_burst(sts)
        self.min_ready = min_ready_seconds(sts)
        self.now = now
        self.status = set_status.new_status(sts, self.current_name, self.update_name, collision_count)
        self.replicas: list[JSON] = []
        self.condemned: list[JSON] = []
        self.first_unavailable: JSON | None = None

    async def run(self, pods: list[JSON]) -> tuple[JSON, ApiError | None]:
        set_status.count(self.status, pods, self.min_ready, self.now)
        self._partition(pods)
        if self.sts["metadata"].get("deletionTimestamp"):
            return self.status, None  # being deleted: report, change nothing
        try:
            stopped = (await run_for_all(len(self.replicas), self._replica, self.monotonic)
                       or await run_for_all(len(self.condemned), self._condemned_claims, self.monotonic)
                       or await run_for_all(len(self.condemned), self._condemned, self.monotonic))
        except ApiError as err:
            self._recount()
            return self.status, err
        self._recount()
        if stopped or (spec(self.sts).get("updateStrategy") or {}).get("type") == "OnDelete":
            return self.status, None
        try:
            await self._roll()
        except ApiError as err:
            return self.status, err
        return self.status, None

    def recheck_after(self) -> float | None:
        """Seconds until a ready Pod becomes available (what a waiting pass waits for), if any is due."""
        waits = [available_in(p, self.min_ready, self.now) for p in self.replicas + self.condemned]
        due = [w for w in waits if w]
        return min(due) + 0.05 if due else None

    # -- the pieces ---------------------------------------------------------------------------------------
    def _partition(self, pods: list[JSON]) -> None:
        start, count = start_ordinal(self.sts), replicas(self.sts)
        slots: list[JSON | None] = [None] * count
        for pod in pods:
            if in_ordinal_range(pod, self.sts):
                slots[ordinal(pod) - start] = pod
            elif ordinal(pod) >= 0:
                self.condemned.append(pod)
        self.replicas = [pod if pod is not None else
                         new_versioned_pod(self.current_set, self.update_set, self.current_name, self.update_name,
                                           start + i) for i, pod in enumerate(slots)]
        self.condemned.sort(key=ordinal, reverse=True)
        unavailable = [p for p in self.replicas + self.condemned[::-1]
                       if is_unavailable(p, self.min_ready, self.now)]
        self.first_unavailable = unavailable[0] if unavailable else None

    def _recount(self) -> None:
        set_status.count(self.status, self.replicas + self.condemned, self.min_ready, self.now)

    async def _replica(self, i: int) -> bool:
        """``processReplica``: True when the pass must stop here (OrderedReady)."""
        pod = self.replicas[i]
        if phase(pod) in ("Failed", "Succeeded"):
            if not is_terminating(pod):
                await self.control.delete_pod(self.sts, pod)
            return True  # the successor is made once this one is gone
        if not is_created(pod):
            if self.control.pod_claim_is_stale(self.sts, pod):
                return True  # its claim is still an earlier Pod's, about to be collected
            await self.control.create_pod(self.sts, pod)
            return self.monotonic
        if phase(pod) == "Pending":
            await self.control.create_missing_claims(self.sts, pod)
        if self.monotonic and (is_terminating(pod) or not is_running_and_ready(pod)
                               or not is_available(pod, self.min_ready, self.now)):
            return True
        if (identity_matches(self.sts, pod) and storage_matches(self.sts, pod)
                and self.control.claims_match_retention(self.update_set, pod)):
            return False
        await self.control.update_pod(self.update_set, pod)
        return False

    async def _condemned_claims(self, i: int) -> bool:
        pod = self.condemned[i]
        if not self.control.claims_match_retention(self.update_set, pod):
            await self.control.update_claims_for_retention(self.update_set, pod)
        return False

    async def _condemned(self, i: int) -> bool:
        """``processCondemned``: delete a Pod beyond the ordinal range."""
        pod = self.condemned[i]
        if is_terminating(pod):
            return self.monotonic  # wait for it to be gone
        if (self.monotonic and pod is not self.first_unavailable
                and (not is_running_and_ready(pod) or not is_available(pod, self.min_ready, self.now))):
            return True
        await self.control.delete_pod(self.sts, pod)
        self._uncount(pod)
        return True

    async def _roll(self) -> None:
        """Delete outdated Pods at or above the partition, within the ``maxUnavailable`` budget."""
        rolling = (spec(self.sts).get("updateStrategy") or {}).get("rollingUpdate") or {}
        update_min = int(rolling.get("partition") or 0)
        budget = max_unavailable(rolling.get("maxUnavailable"), len(self.replicas))
        unavailable = sum(is_unavailable(p, self.min_ready, self.now) for p in self.replicas)
        targets = [p for p in self.replicas[update_min:][::-1]
                   if revision_of(p) != self.update_name and not is_terminating(p) and is_created(p)]
        if not self.monotonic:
            await self._roll_parallel(targets, budget, unavailable)
            return
        if unavailable >= budget:
            return
        for pod in targets[:budget - unavailable]:
            await self.control.delete_pod(self.sts, pod)
            self._uncount(pod)

    async def _roll_parallel(self, targets: list[JSON], budget: int, unavailable: int) -> None:
        """Parallel: outdated Pods that are unavailable anyway go first, then available ones within budget."""
        broken = [p for p in targets if not is_available(p, self.min_ready, self.now)]
        if unavailable >= budget and not broken:
            return
        for pod in broken:
            await self.control.delete_pod(self.sts, pod)
            self._uncount(pod)
        healthy = [p for p in targets if is_available(p, self.min_ready, self.now)]
        for pod in healthy[:max(budget - unavailable, 0)]:
            await self.control.delete_pod(self.sts, pod)
            self._uncount(pod)

    def _uncount(self, pod: JSON) -> None:
        revision = revision_of(pod)
        self.status["currentReplicas"] -= revision == self.current_name
        self.status["updatedReplicas"] -= revision == self.update_name


def max_unavailable(value: int | str | None, replica_count: int) -> int:
    """``rollingUpdate.maxUnavailable`` as a Pod count: default 1, percentages rounded down, at least 1."""
    if value is None:
        return 1
    if isinstance(value, str) and value.endswith("%"):
        number = math.floor(int(value[:-1]) * replica_count / 100)
    else:
        number = int(value)
    return max(number, 1)


async def run_for_all(count: int, step: Callable[[int], Awaitable[bool]], monotonic: bool) -> bool:
    """``runForAll``: in order, stopping where ``step`` says so (monotonic); or all at once in batches of 1, 2,
    4, ... stopping after a batch with an error. True when the pass must end here."""
    if monotonic:
        for i in range(count):
            if await step(i):
                return True
        return False
    done, size = 0, min(count, 1)
    while size > 0:
        results = await asyncio.gather(*(step(i) for i in range(done, done + size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        done += size
        size = min(2 * size, count - done, MAX_BATCH)
    return False
