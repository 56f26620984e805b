"""The framework runner: strings a profile's plugins together for one pod, as kube's frameworkImpl and
``schedulePod`` do.

Scheduling cycle: PreFilter (reject outright, Skip a Filter, or narrow the nodes) → Filter over the whole table
(each plugin answers for every row at once) → take the first N feasible rows from a rotating start (kube's
percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least 5% and 100 nodes) → PreScore/Score over those
rows → the highest weighted sum, ties broken at random. A nominated node that still fits is taken at once. When
nothing fits, a ``Diagnosis`` keeps the per-plugin masks for the FailedScheduling message and for preemption.

Binding cycle: Reserve → Permit (may wait) → PreBind → Bind → PostBind; a failure unreserves in reverse order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .framework import (
    BindPlugin,
    Code,
    CycleState,
    Diagnosis,
    FilterPlugin,
    FilterResult,
    Mask,
    PermitPlugin,
    PostBindPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreBindPlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ReservePlugin,
    Rows,
    ScorePlugin,
    Status,
)
from .podinfo import PodInfo
from .snapshot import Snapshot

NO_NODES = "no nodes available to schedule pods"
MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5


@dataclass
class Profile:
    """The plugins of one scheduler profile, in the order they run, and score weights by plugin name."""

    pre_filter: Sequence[PreFilterPlugin] = ()
    filter: Sequence[FilterPlugin] = ()
    post_filter: Sequence[PostFilterPlugin] = ()
    pre_score: Sequence[PreScorePlugin] = ()
    score: Sequence[ScorePlugin] = ()
    reserve: Sequence[ReservePlugin] = ()
    permit: Sequence[PermitPlugin] = ()
    pre_bind: Sequence[PreBindPlugin] = ()
    bind: Sequence[BindPlugin] = ()
    post_bind: Sequence[PostBindPlugin] = ()
    weights: dict[str, int] = field(default_factory=dict)
    percentage_of_nodes_to_score: int = 0  # 0: kube's adaptive default


@dataclass
class ScheduleResult:
    node: str = ""
    row: int = -1
    evaluated: int = 0
    feasible: int = 0
    diagnosis: Diagnosis | None = None  # set when no node fits
    status: Status | None = None  # set when the cycle failed (FitError-like or an error)


def nodes_to_find(percentage: int, all_nodes: int) -> int:
    """kube's numFeasibleNodesToFind."""
    if all_nodes < MIN_FEASIBLE_NODES:
        return all_nodes
    if percentage <= 0:
        percentage = max(50 - all_nodes // 125, MIN_FEASIBLE_PERCENTAGE)
    return max(all_nodes * percentage // 100, MIN_FEASIBLE_NODES)


class WaitingPod:
    """A pod held at Permit until every waiting plugin allows it (or one rejects, or time runs out)."""

    def __init__(self, pod: PodInfo, pending: dict[str, float]) -> None:
        self.pod = pod
        self.pending = set(pending)
        self.timeout = max(pending.values()) if pending else 0.0
        self._done: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

    def allow(self, plugin: str) -> None:
        self.pending.discard(plugin)
        if not self.pending and not self._done.done():
            self._done.set_result(Status())

    def reject(self, plugin: str, message: str) -> None:
        if not self._done.done():
            self._done.set_result(Status(Code.UNSCHEDULABLE, (message,), plugin))

    async def wait(self) -> Status:
        try:
            return await asyncio.wait_for(asyncio.shield(self._done), self.timeout)
        except TimeoutError:
            names = ", ".join(sorted(self.pending))
            return Status(Code.UNSCHEDULABLE, (f"rejected due to timeout after waiting {self.timeout:g}s at "
                                               f"plugin {names}",), names)


class Framework:
    def __init__(self, profile: Profile, *, rng: random.Random | None = None) -> None:
        self.profile = profile
        self.rng = rng or random.Random()
        self.next_start = 0
        self.waiting: dict[str, WaitingPod] = {}

    # -- scheduling cycle -----------------------------------------------------------------------------------

    def schedule(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> ScheduleResult:
        if snap.num_nodes == 0:
            return ScheduleResult(status=Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (NO_NODES,)))
        table = snap.table
        alive = table.alive[: table.size]
        diagnosis = Diagnosis(num_nodes=snap.num_nodes, alive=alive)
        failed = self._pre_filter(state, pod, snap, diagnosis)
        if failed is not None:
            return ScheduleResult(diagnosis=diagnosis if failed.rejected else None, status=failed)
        passed = self._filter(state, pod, snap, diagnosis)
        nominated = table.rows.get(pod.nominated_node, -1) if pod.nominated_node else -1
        if nominated >= 0 and passed[nominated]:
            return ScheduleResult(node=pod.nominated_node, row=nominated, evaluated=1, feasible=1)
        feasible = np.flatnonzero(passed)
        if feasible.shape[0] == 0:
            return ScheduleResult(diagnosis=diagnosis, status=Status(Code.UNSCHEDULABLE))
        rows = self._take(feasible, int(np.count_nonzero(alive)) if diagnosis.outside is None
                          else int(np.count_nonzero(alive & ~diagnosis.outside)), table.size)
        row = int(rows[0]) if rows.shape[0] == 1 else self._select(state, pod, snap, rows)
        info = table.infos[row]
        assert info is not None
        return ScheduleResult(node=info.name, row=row, evaluated=int(rows.shape[0]), feasible=int(feasible.shape[0]))

    def _pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, diagnosis: Diagnosis) -> Status | None:
        allowed: set[str] | None = None
        narrowing: list[str] = []
        for plugin in self.profile.pre_filter:
            result, status = plugin.pre_filter(state, pod, snap)
            if status.skip:
                state.skip_filter.add(plugin.name)
                continue
            if status.rejected:
                diagnosis.prefilter = status.with_plugin(plugin.name)
                diagnosis.unschedulable_plugins.add(plugin.name)
                return diagnosis.prefilter
            if not status.success:
                return status.with_plugin(plugin.name)
            if result is not None and result.node_names is not None:
                narrowing.append(plugin.name)
                allowed = set(result.node_names) if allowed is None else allowed & result.node_names
        if allowed is None:
            return None
        if not allowed:
            text = (f"node(s) didn't satisfy plugin {narrowing[0]}" if len(narrowing) == 1 else
                    f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(narrowing))}] simultaneously")
            diagnosis.prefilter = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (text,), narrowing[0])
            diagnosis.unschedulable_plugins.update(narrowing)
            return diagnosis.prefilter
        diagnosis.outside = ~snap.rows_named(allowed)
        diagnosis.outside_status = Status(
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            (f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(narrowing))}]",), narrowing[0])
        return None

    def _filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, diagnosis: Diagnosis) -> Mask:
        passed = diagnosis.alive.copy()
        if diagnosis.outside is not None:
            passed &= ~diagnosis.outside
        first: np.ndarray | None = None  # built at the first rejection: most cycles reject nothing
        names: list[str] = []
        results: list[FilterResult | None] = []
        for index, plugin in enumerate(self.profile.filter):
            names.append(plugin.name)
            if plugin.name in state.skip_filter:
                results.append(None)
                continue
            result = plugin.filter(state, pod, snap, passed)
            results.append(result)
            if result is None:
                continue
            newly = passed & ~result.passed
            if newly.any():
                if first is None:
                    first = np.full(passed.shape[0], -1, np.int16)
                first[newly] = index
                passed &= result.passed
                diagnosis.unschedulable_plugins.add(plugin.name)
        diagnosis.plugin_names, diagnosis.results, diagnosis.first_rejector = names, results, first
        return passed

    def _take(self, feasible: Rows, considered: int, size: int) -> Rows:
        """The first N feasible rows from the rotating start (kube's nextStartNodeIndex)."""
        want = nodes_to_find(self.profile.percentage_of_nodes_to_score, considered)
        start = self.next_start % size if size else 0
        if feasible.shape[0] <= want:
            return feasible
        pos = int(np.searchsorted(feasible, start))
        if pos + want <= feasible.shape[0]:
            rows = feasible[pos: pos + want]
        else:
            rows = np.concatenate((feasible[pos:], feasible[: want - (feasible.shape[0] - pos)]))
        last = int(rows[-1])
        self.next_start = (last + 1) % size
        return rows

    def _select(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> int:
        for pre in self.profile.pre_score:
            if pre.pre_score(state, pod, snap, rows).skip:
                state.skip_score.add(pre.name)
        total = np.zeros(rows.shape[0], np.int64)
        weights = self.profile.weights
        for plugin in self.profile.score:
            if plugin.name in state.skip_score:
                continue
            total += weights.get(plugin.name, 1) * plugin.score(state, pod, snap, rows)
        best = np.flatnonzero(total == total.max())
        pick = best[0] if best.shape[0] == 1 else best[self.rng.randrange(best.shape[0])]
        return int(rows[pick])

    def evaluate(self, pod: PodInfo, snap: Snapshot, row: int) -> Status:
        """The status the filters give one node for the pod as the snapshot stands (preemption's what-ifs)."""
        state = CycleState()
        table = snap.table
        diagnosis = Diagnosis(num_nodes=snap.num_nodes, alive=table.alive[: table.size])
        failed = self._pre_filter(state, pod, snap, diagnosis)
        if failed is not None:
            return failed
        if diagnosis.outside is not None and diagnosis.outside[row]:
            return diagnosis.node_status(row)
        passed = self._filter(state, pod, snap, diagnosis)
        return Status() if passed[row] else diagnosis.node_status(row)

    def post_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot,
                    diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status]:
        """kube's RunPostFilterPlugins: the first success wins; rejections' reasons are joined."""
        result: PostFilterResult | None = None
        reasons: list[str] = []
        first = ""
        for plugin in self.profile.post_filter:
            found, status = plugin.post_filter(state, pod, snap, diagnosis)
            if status.success:
                return found, status.with_plugin(plugin.name)
            if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return found, status.with_plugin(plugin.name)
            if not status.rejected:
                return None, status.with_plugin(plugin.name)
            if found is not None:
                result = found
            reasons.extend(status.reasons)
            first = first or plugin.name
        return result, Status(Code.UNSCHEDULABLE, tuple(reasons), first)

    # -- binding cycle --------------------------------------------------------------------------------------

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for index, plugin in enumerate(self.profile.reserve):
            status = plugin.reserve(state, pod, node)
            if not status.success:
                for done in reversed(self.profile.reserve[: index + 1]):
                    done.unreserve(state, pod, node)
                return status.with_plugin(plugin.name)
        return Status()

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in reversed(self.profile.reserve):
            plugin.unreserve(state, pod, node)

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status, WaitingPod | None]:
        pending: dict[str, float] = {}
        for plugin in self.profile.permit:
            status, timeout = plugin.permit(state, pod, node)
            if status.code == Code.WAIT:
                pending[plugin.name] = timeout
            elif not status.success:
                return status.with_plugin(plugin.name), None
        if not pending:
            return Status(), None
        waiting = WaitingPod(pod, pending)
        self.waiting[pod.uid] = waiting
        return Status(Code.WAIT), waiting

    async def wait_on_permit(self, waiting: WaitingPod) -> Status:
        try:
            return await waiting.wait()
        finally:
            self.waiting.pop(waiting.pod.uid, None)

    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for plugin in self.profile.pre_bind:
            status = await plugin.pre_bind(state, pod, node)
            if not status.success:
                return status.with_plugin(plugin.name)
        return Status()

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for plugin in self.profile.bind:
            status = await plugin.bind(state, pod, node)
            if status.skip:
                continue
            return status.with_plugin(plugin.name)
        return Status.error("no bind plugin bound the pod")

    def post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in self.profile.post_bind:
            plugin.post_bind(state, pod, node)
