"""The scheduling framework's vocabulary: result codes, statuses, cycle state and one protocol per extension point.

Shaped like kube-scheduler's framework (PreFilter, Filter, PostFilter, PreScore, Score, Reserve, Permit, PreBind,
Bind, PostBind; result codes instead of exceptions), with one difference that makes it fast in Python: Filter and
Score plugins answer for the whole node table in one call (numpy columns, see ``snapshot``), not once per node. A
filter returns a ``FilterResult`` — which rows pass and, for the rows it turns down, kube's per-node status folded
into masks (a reason and the rows it applies to, and which rejections are unresolvable). A score plugin returns
its normalised 0..100 scores for the rows being scored. The runner (``runtime.Framework``) strings plugins
together; the per-node statuses are rebuilt from the masks only when a pod turns out unschedulable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .podinfo import PodInfo
    from .snapshot import Snapshot

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.intp]
Scores = npt.NDArray[np.int64]

MAX_NODE_SCORE = 100


class Code(IntEnum):
    """kube's framework result codes."""

    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6

    def __str__(self) -> str:
        return _CODE_NAMES[self]


_CODE_NAMES = {Code.SUCCESS: "Success", Code.ERROR: "Error", Code.UNSCHEDULABLE: "Unschedulable",
               Code.UNSCHEDULABLE_AND_UNRESOLVABLE: "UnschedulableAndUnresolvable", Code.WAIT: "Wait",
               Code.SKIP: "Skip", Code.PENDING: "Pending"}


@dataclass(frozen=True, slots=True)
class Status:
    """What a plugin says: a code, the reasons (kube's ``Status.Reasons()``) and which plugin said it."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def of(cls, code: Code, *reasons: str, plugin: str = "") -> Status:
        return cls(code, tuple(reasons), plugin)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, (message,), plugin)

    def with_plugin(self, plugin: str) -> Status:
        return Status(self.code, self.reasons, plugin)

    @property
    def success(self) -> bool:
        return self.code == Code.SUCCESS

    @property
    def skip(self) -> bool:
        return self.code == Code.SKIP

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE, Code.PENDING)

    def message(self) -> str:
        return ", ".join(self.reasons)


OK = Status()
SKIP = Status(Code.SKIP)


class CycleState:
    """Per-pod scratch space shared by the plugins of one scheduling cycle (kube's CycleState)."""

    __slots__ = ("data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()  # plugins whose PreFilter said Skip
        self.skip_score: set[str] = set()  # plugins whose PreScore said Skip


@dataclass(slots=True)
class FilterResult:
    """A filter's answer over the node table.

    ``passed`` is a bool per table row. ``reasons`` pairs each reason text with the rows it applies to (a row may
    have several, as NodeResourcesFit gives "Insufficient cpu" and "Insufficient memory"). ``unresolvable`` says
    which rejected rows are UnschedulableAndUnresolvable: a mask, or a bool for all of them."""

    passed: Mask
    reasons: list[tuple[str, Mask]]
    unresolvable: Mask | bool = False

    @classmethod
    def reject(cls, passed: Mask, reason: str, *, unresolvable: bool) -> FilterResult:
        return cls(passed, [(reason, ~passed)], unresolvable)


@dataclass(slots=True)
class PostFilterResult:
    nominated_node: str = ""  # "" clears a previous nomination


@dataclass(slots=True)
class PreFilterResult:
    """A PreFilter plugin can narrow the nodes to look at (kube's PreFilterResult.NodeNames)."""

    node_names: set[str] | None = None


@dataclass(slots=True)
class Diagnosis:
    """Why a pod fits nowhere: per filter plugin its result, and per row the first plugin that turned it down."""

    num_nodes: int
    alive: Mask
    prefilter: Status | None = None  # set when a PreFilter plugin rejected the pod outright
    outside: Mask | None = None  # rows a PreFilterResult excluded
    outside_status: Status | None = None
    plugin_names: list[str] = field(default_factory=list)
    results: list[FilterResult | None] = field(default_factory=list)
    first_rejector: npt.NDArray[np.int16] | None = None  # index into plugin_names, -1 none
    unschedulable_plugins: set[str] = field(default_factory=set)
    post_filter_msg: str = ""

    def histogram(self) -> dict[str, int]:
        """Reason -> number of nodes, counted as kube's FitError counts them."""
        counts: dict[str, int] = {}
        if self.prefilter is not None:
            return counts
        if self.outside is not None and self.outside_status is not None:
            excluded = int(np.count_nonzero(self.outside & self.alive))
            for reason in self.outside_status.reasons:
                counts[reason] = counts.get(reason, 0) + excluded
        if self.first_rejector is None:
            return counts
        for index, result in enumerate(self.results):
            if result is None:
                continue
            first = (self.first_rejector == index) & self.alive
            for reason, rows in result.reasons:
                n = int(np.count_nonzero(rows & first))
                if n:
                    counts[reason] = counts.get(reason, 0) + n
        return counts

    def node_status(self, row: int) -> Status:
        """The status kube would have recorded for one node (SUCCESS if it passed every filter)."""
        if self.prefilter is not None:
            return self.prefilter
        if self.outside is not None and self.outside[row] and self.outside_status is not None:
            return self.outside_status
        if self.first_rejector is None or self.first_rejector[row] < 0:
            return OK
        index = int(self.first_rejector[row])
        result = self.results[index]
        assert result is not None
        reasons = tuple(reason for reason, rows in result.reasons if rows[row])
        unresolvable = result.unresolvable if isinstance(result.unresolvable, bool) else bool(result.unresolvable[row])
        code = Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE
        return Status(code, reasons, self.plugin_names[index])

    def unresolvable_rows(self) -> Mask:
        """Rows where preemption cannot help: their status is UnschedulableAndUnresolvable."""
        if self.prefilter is not None:
            if self.prefilter.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return self.alive.copy()
            return np.zeros_like(self.alive)
        out = np.zeros_like(self.alive)
        if self.outside is not None:
            out |= self.outside
        if self.first_rejector is not None:
            for index, result in enumerate(self.results):
                if result is None:
                    continue
                first = self.first_rejector == index
                if isinstance(result.unresolvable, bool):
                    if result.unresolvable:
                        out |= first
                else:
                    out |= first & result.unresolvable
        return out & self.alive


def fit_error_message(num_nodes: int, diagnosis: Diagnosis | None = None, *, prefilter_msg: str = "",
                      post_filter_msg: str = "") -> str:
    """kube's ``FitError.Error()``: ``0/N nodes are available: <prefilter>. <histogram>. <postfilter>``."""
    if diagnosis is not None and diagnosis.prefilter is not None:
        prefilter_msg = diagnosis.prefilter.message()
    histogram = diagnosis.histogram() if diagnosis is not None and not prefilter_msg else {}
    post = post_filter_msg or (diagnosis.post_filter_msg if diagnosis is not None else "")
    return format_fit_error(num_nodes, histogram, prefilter_msg=prefilter_msg, post_filter_msg=post)


def format_fit_error(num_nodes: int, histogram: dict[str, int], *, prefilter_msg: str = "",
                     post_filter_msg: str = "") -> str:
    """The histogram entries are ``"<count> <reason>"`` sorted as strings (Go's sort.Strings), joined by ", "."""
    message = f"0/{num_nodes} nodes are available:"
    if prefilter_msg:
        message += f" {prefilter_msg}."
    else:
        entries = sorted(f"{count} {reason}" for reason, count in histogram.items())
        if entries:
            message += f" {', '.join(entries)}."
    if post_filter_msg:
        message += f" {post_filter_msg}"
    return message


# -- plugin protocols, one per extension point -------------------------------------------------------------


class Plugin(Protocol):
    name: str


class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot) -> tuple[PreFilterResult | None, Status]:
        """Compute what Filter needs; reject the pod outright, narrow the nodes, or Skip this plugin's Filter."""


class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, snap: Snapshot, candidates: Mask) -> FilterResult | None:
        """Which table rows can run the pod; None when every row passes. ``candidates`` are the rows still
        feasible after the earlier filters (a hint: a plugin may skip work on the others)."""


class PostFilterPlugin(Plugin, Protocol):
    def post_filter(self, state: CycleState, pod: PodInfo, snap: Snapshot,
                    diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status]:
        """Run when no node fits (preemption): Success with a nominated node, or Unschedulable with why not."""


class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Status:
        """Prepare scoring of ``rows``; Skip to leave this plugin's Score out."""


class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: PodInfo, snap: Snapshot, rows: Rows) -> Scores:
        """Normalised scores (0..MAX_NODE_SCORE) for ``rows``, in their order."""


class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None: ...


class PermitPlugin(Plugin, Protocol):
    def permit(self, state: CycleState, pod: PodInfo, node: str) -> tuple[Status, float]:
        """Success, Wait (with a timeout in seconds; someone calls ``WaitingPod.allow``), or a rejection."""


class PreBindPlugin(Plugin, Protocol):
    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status: ...


class BindPlugin(Plugin, Protocol):
    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        """Bind the pod, or Skip to let the next bind plugin do it."""


class PostBindPlugin(Plugin, Protocol):
    def post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None: ...
