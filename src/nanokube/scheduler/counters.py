"""Per-node counts of assigned pods that match a selector, kept current pod by pod.

Topology spread and inter-pod affinity ask "how many pods matching S are on each node (or in each zone)?" for
every pod they schedule. Walking all pods each time would be O(pods) Python per cycle; instead the first question
about a selector builds a count column over the node table (one pass), and from then on every pod placed or
removed adjusts the columns it matches. A Deployment's pods share one selector, so the column is built once and
read thousands of times. Columns not read for a while are dropped (bounded, least recently used first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

import numpy as np
import numpy.typing as npt

from .podinfo import PodInfo

Counts = npt.NDArray[np.int64]
Matcher = Callable[[PodInfo], bool]


class _Column:
    __slots__ = ("counts", "match")

    def __init__(self, match: Matcher, capacity: int) -> None:
        self.match = match
        self.counts: Counts = np.zeros(capacity, np.int64)


class PodCounters:
    def __init__(self, limit: int = 512) -> None:
        self._columns: OrderedDict[Hashable, _Column] = OrderedDict()
        self.limit = limit

    def __len__(self) -> int:
        return len(self._columns)

    def counts(self, key: Hashable, match: Matcher, placed: Iterable[tuple[PodInfo, int]], capacity: int) -> Counts:
        """The column for ``key`` (a hashable description of ``match``), built from ``placed`` if new."""
        column = self._columns.get(key)
        if column is None:
            column = _Column(match, capacity)
            for pod, row in placed:
                if match(pod):
                    column.counts[row] += 1
            self._columns[key] = column
            if len(self._columns) > self.limit:
                self._columns.popitem(last=False)
        else:
            self._columns.move_to_end(key)
            if column.counts.shape[0] < capacity:
                column.counts = _widen(column.counts, capacity)
        return column.counts

    def change(self, pod: PodInfo, row: int, sign: int) -> None:
        """A pod was placed on (sign 1) or taken off (sign -1) the node in ``row``."""
        for column in self._columns.values():
            if column.match(pod):
                if row >= column.counts.shape[0]:
                    column.counts = _widen(column.counts, max(row + 1, 2 * column.counts.shape[0]))
                column.counts[row] += sign

    def drop(self, keep: Callable[[Hashable], bool]) -> None:
        """Forget columns whose answers may have changed for reasons other than pods (namespace labels)."""
        for key in [k for k in self._columns if not keep(k)]:
            del self._columns[key]


def _widen(counts: Counts, capacity: int) -> Counts:
    out = np.zeros(capacity, np.int64)
    out[: counts.shape[0]] = counts
    return out
