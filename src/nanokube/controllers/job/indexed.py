"""Indexed Jobs: completion indexes on Pods, and the compressed index lists of Job status.

``status.completedIndexes`` and ``status.failedIndexes`` are ordered intervals written ``"1,3-5,7"``; two
adjacent indexes print as ``"1,2"`` (kube's ``orderedIntervals.String``). An interval list here is a sorted
list of ``(first, last)`` pairs that neither overlap nor touch. Pods carry their index in the annotation
(and label) ``batch.kubernetes.io/job-completion-index``; Pods of ``backoffLimitPerIndex`` Jobs also count
failures of their index in ``batch.kubernetes.io/job-index-failure-count`` (``-ignored-failure-count``).
"""

from __future__ import annotations

from collections.abc import Iterable

from nanokube.client.interface import JSON

from .pods import meta, removal_order

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"
UNKNOWN = -1
MAX_GENERATED_NAME = 58  # 63 minus the 5 random characters generateName appends
MAX_INT32 = 2**31 - 1

Intervals = list[tuple[int, int]]


def parse_indexes(text: str | None, completions: int) -> Intervals:
    """Intervals from ``"1,3-5"``, dropping what lies at or beyond ``completions`` and corrupt parts."""
    result: Intervals = []
    for part in (text or "").split(","):
        if not part:
            continue
        limits = part.split("-")
        try:
            first = int(limits[0])
            last = int(limits[1]) if len(limits) > 1 else first
        except ValueError:
            continue
        if first >= completions:
            break
        last = min(last, completions - 1)
        if result and result[-1][1] == first - 1:
            result[-1] = (result[-1][0], last)
        else:
            result.append((first, last))
    return result


def format_indexes(intervals: Intervals) -> str:
    parts = []
    for first, last in intervals:
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)


def merge(a: Intervals, b: Intervals) -> Intervals:
    result: Intervals = []
    for first, last in sorted(a + b):
        if result and first <= result[-1][1] + 1:
            if last > result[-1][1]:
                result[-1] = (result[-1][0], last)
        else:
            result.append((first, last))
    return result


def with_indexes(intervals: Intervals, indexes: Iterable[int]) -> Intervals:
    return merge(intervals, [(i, i) for i in sorted(set(indexes))])


def total(intervals: Intervals | None) -> int:
    return sum(last - first + 1 for first, last in intervals or [])


def has(intervals: Intervals | None, index: int) -> bool:
    return any(first <= index <= last for first, last in intervals or [])


def completion_index(pod: JSON) -> int:
    value = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    if not isinstance(value, str):
        return UNKNOWN
    try:
        index = int(value)
    except (TypeError, ValueError):
        return UNKNOWN
    return index if index >= 0 else UNKNOWN


def _count(pod: JSON, annotation: str) -> int:
    try:
        value = int((meta(pod).get("annotations") or {}).get(annotation, 0))
    except (TypeError, ValueError):
        return 0
    return value if 0 <= value <= MAX_INT32 else 0


def failure_count(pod: JSON) -> int:
    return _count(pod, FAILURE_COUNT)


def absolute_failure_count(pod: JSON) -> int:
    return _count(pod, FAILURE_COUNT) + _count(pod, IGNORED_FAILURE_COUNT)


def ignored_failure_count(pod: JSON) -> int:
    return _count(pod, IGNORED_FAILURE_COUNT)


def indexes_of(pods: Iterable[JSON]) -> set[int]:
    return {ix for ix in (completion_index(p) for p in pods) if ix != UNKNOWN}


def first_pending(count: int, completions: int, not_pending: Intervals) -> list[int]:
    """The lowest ``count`` indexes below ``completions`` not covered by ``not_pending``."""
    result: list[int] = []
    candidate = 0
    for first, last in not_pending:
        while candidate < completions and len(result) < count and candidate < first:
            result.append(candidate)
            candidate += 1
        candidate = max(candidate, last + 1)
    while candidate < completions and len(result) < count:
        result.append(candidate)
        candidate += 1
    return result


def duplicates_for_removal(pods: list[JSON], completions: int) -> tuple[list[JSON], list[JSON]]:
    """(Pods to remove, Pods to keep): Pods without an index or beyond ``completions`` go, and of Pods sharing
    an index all but the one most worth keeping."""
    remove: list[JSON] = []
    by_index: dict[int, list[JSON]] = {}
    for pod in pods:
        ix = completion_index(pod)
        if ix == UNKNOWN or ix >= completions:
            remove.append(pod)
        else:
            by_index.setdefault(ix, []).append(pod)
    keep: list[JSON] = []
    for ix in sorted(by_index):
        group = sorted(by_index[ix], key=removal_order)
        remove.extend(group[:-1])
        keep.append(group[-1])
    return remove, keep


def pod_name_prefix(job_name: str, index: int) -> str:
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATED_NAME:
        prefix = prefix[:MAX_GENERATED_NAME - len(suffix)] + suffix
    return prefix
