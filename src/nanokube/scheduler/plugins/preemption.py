"""DefaultPreemption (PostFilter): when a pod fits nowhere, find a node where evicting lower-priority pods
makes room, evict them, and nominate the node.

As kube's evaluator: nodes whose failure was UnschedulableAndUnresolvable are "not helpful"; on each other node
(from a random offset, until enough candidates: 10% of them, at least 100) every lower-priority pod is taken
off, the filters run again, then victims are reprieved one by one — highest priority first, those whose
eviction would break a PodDisruptionBudget before the rest — while the pod still fits. The candidate with the
fewest budget violations, then the lowest top victim priority, the smallest priority sum, the fewest victims and
the latest start wins. The what-ifs mutate the real snapshot and put every pod back.

The API work (DisruptionTarget condition, delete, ``Preempted`` event, clearing lower nominations on that node)
is handed to ``submit`` so the scheduling loop does not wait on it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from nanokube.api.errors import ApiError, NotFound
from nanokube.api.labels import selector_from_label_selector

from ..framework import Code, CycleState, Diagnosis, PostFilterResult, Status, format_fit_error
from ..handle import Handle
from ..podinfo import PodInfo
from ..runtime import Framework
from ..snapshot import Snapshot

log = logging.getLogger(__name__)
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_CANDIDATES_PERCENTAGE = 10
MIN_CANDIDATES_ABSOLUTE = 100
Submit = Callable[[Coroutine[Any, Any, None]], None]


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]
    violations: int


def _importance(pod: PodInfo) -> tuple[int, str]:
    return (-pod.priority, pod.start_time)  # sorts the more important first: higher priority, then older


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, framework: Callable[[], Framework], handle: Handle | None = None, *,
                 submit: Submit | None = None, rng: random.Random | None = None) -> None:
        self.framework = framework
        self.handle = handle or Handle()
        self.submit = submit
        self.rng = rng or random.Random()

    def post_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot,
                    diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status]:
        refusal = self._ineligible(pod, snap)
        if refusal:
            return None, Status.of(Code.UNSCHEDULABLE, f"preemption: {refusal}")
        histogram: dict[str, int] = {}
        unresolvable = diagnosis.unresolvable_rows()
        potential = [int(r) for r in (diagnosis.alive & ~unresolvable).nonzero()[0]]
        not_helpful = int(unresolvable.sum())
        if not_helpful:
            histogram[NOT_HELPFUL] = not_helpful
        candidates = self._dry_run(pod, snap, potential, histogram)
        if not candidates:
            message = format_fit_error(snap.num_nodes, histogram)
            return PostFilterResult(""), Status.of(Code.UNSCHEDULABLE, f"preemption: {message}")
        best = min(candidates, key=_rank)
        self._prepare(pod, best, snap)
        return PostFilterResult(best.node), Status()

    def _ineligible(self, pod: PodInfo, snap: Snapshot) -> str:
        if pod.preemption_policy == "Never":
            return "not eligible due to preemptionPolicy=Never."
        info = snap.node(pod.nominated_node) if pod.nominated_node else None
        if info is not None and any(p.terminating and p.priority < pod.priority for p in info.pods.values()):
            return "not eligible due to a terminating pod on the nominated node."
        return ""

    def _dry_run(self, pod: PodInfo, snap: Snapshot, potential: list[int],
                 histogram: dict[str, int]) -> list[Candidate]:
        if not potential:
            return []
        wanted = min(max(len(potential) * MIN_CANDIDATES_PERCENTAGE // 100, MIN_CANDIDATES_ABSOLUTE), len(potential))
        offset = self.rng.randrange(len(potential))
        found: list[Candidate] = []
        for i in range(len(potential)):
            row = potential[(offset + i) % len(potential)]
            candidate, status = self._victims_on(pod, snap, row)
            if candidate is not None:
                found.append(candidate)
                if len(found) >= wanted:
                    break
            else:
                for reason in status.reasons:
                    histogram[reason] = histogram.get(reason, 0) + 1
        return found

    def _victims_on(self, pod: PodInfo, snap: Snapshot, row: int) -> tuple[Candidate | None, Status]:
        info = snap.table.infos[row]
        assert info is not None
        lower = sorted((p for p in info.pods.values() if p.priority < pod.priority), key=_importance)
        if not lower:
            return None, Status.of(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, NO_VICTIMS)
        framework = self.framework()
        taken = {p.uid: _take_off(snap, p) for p in lower}
        try:
            status = framework.evaluate(pod, snap, row)
            if not status.success:
                return None, status
            violating, other = self._split_by_budget(lower)
            victims: list[PodInfo] = []
            violations = 0
            for group, counted in ((violating, 1), (other, 0)):
                for victim in group:
                    _put_back(snap, taken[victim.uid])  # try to let it stay
                    if framework.evaluate(pod, snap, row).success:
                        del taken[victim.uid]
                    else:
                        snap.remove_pod(victim.uid)
                        victims.append(victim)
                        violations += counted
            return Candidate(info.name, victims, violations), Status()
        finally:
            for entry in taken.values():
                if entry[0].uid not in snap.pods:
                    _put_back(snap, entry)

    def _split_by_budget(self, pods: list[PodInfo]) -> tuple[list[PodInfo], list[PodInfo]]:
        """kube's filterPodsWithPDBViolation: pods whose eviction would take a budget below zero first."""
        budgets = []
        for pdb in self.handle.items("poddisruptionbudgets"):
            try:
                selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
            except ValueError:
                continue
            allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
            budgets.append([pdb["metadata"].get("namespace"), selector, allowed])
        violating: list[PodInfo] = []
        other: list[PodInfo] = []
        for pod in pods:
            breaks = False
            for budget in budgets:
                if budget[0] == pod.namespace and not budget[1].empty and budget[1].matches(pod.labels):
                    budget[2] -= 1
                    breaks = breaks or budget[2] < 0
            (violating if breaks else other).append(pod)
        return violating, other

    def _prepare(self, pod: PodInfo, best: Candidate, snap: Snapshot) -> None:
        lower_nominated = [p for p in snap.nominated.get(best.node, {}).values()
                           if p.priority < pod.priority and p.uid != pod.uid]
        for other in lower_nominated:
            snap.clear_nomination(other.uid)
        if self.submit is not None:
            self.submit(self._evict(pod, best, lower_nominated))

    async def _evict(self, pod: PodInfo, best: Candidate, lower_nominated: list[PodInfo]) -> None:
        client = self.handle.client
        if client is None:
            return
        pods = client.registry.get("", "v1", "pods")
        assert pods is not None
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{pod.scheduler_name}: preempting to accommodate a higher priority pod"}
        for victim in best.victims:
            try:
                await client.patch(pods, victim.namespace, victim.name, {"status": {"conditions": [condition]}},
                                   patch_type="strategic", subresource="status")
                await client.delete(pods, victim.namespace, victim.name, uid=victim.uid or None)
            except NotFound:
                continue
            except ApiError as err:
                log.warning("preempting %s for %s failed: %s", victim.key, pod.key, err)
                continue
            if self.handle.recorder is not None:
                await self.handle.recorder.event(victim.pod, "Normal", "Preempted",
                                                 f"Preempted by pod {pod.uid} on node {best.node}")
        for other in lower_nominated:
            try:
                await client.patch(pods, other.namespace, other.name, {"status": {"nominatedNodeName": None}},
                                   subresource="status")
            except ApiError:
                continue


def _rank(c: Candidate) -> tuple[int, int, int, int, str]:
    top = max((v.priority for v in c.victims), default=-(2**31))
    total = sum(v.priority + 2**31 for v in c.victims)
    top_starts = [v.start_time for v in c.victims if v.priority == top]
    earliest = min(top_starts, default="")
    # later start of the top victims is better: invert the timestamp's characters for a min() ranking
    later_is_better = "".join(chr(0x10FFFF - ord(ch)) for ch in earliest)
    return (c.violations, top, total, len(c.victims), later_is_better)


def _take_off(snap: Snapshot, pod: PodInfo) -> tuple[PodInfo, str, bool]:
    entry = snap.pods[pod.uid]
    assumed = snap.is_assumed(pod.uid)
    snap.remove_pod(pod.uid)
    return entry[0], entry[1], assumed


def _put_back(snap: Snapshot, entry: tuple[PodInfo, str, bool]) -> None:
    pod, node, assumed = entry
    if assumed:
        snap.assume(pod, node)
    else:
        snap.add_pod(pod, node)
