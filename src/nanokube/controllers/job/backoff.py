"""Back-off between Pod recreations after failures (``backoff_utils.go``).

Each Job has a record of its failures since its last success and when the last of them finished; the
delay before the next Pod is ``base * 2**(failures-1)``, capped, counted from that last failure (kube: 10 s
doubling, capped at 10 minutes). The record is kept in memory only, as kube does: a restarted controller
starts the count afresh. Indexed Jobs with ``backoffLimitPerIndex`` back off per index instead, from the
failure count carried on the last failed Pod of the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from nanokube.client.interface import JSON

from .indexed import absolute_failure_count
from .pods import finished_time


@dataclass(frozen=True)
class BackoffRecord:
    key: str
    failures_after_last_success: int = 0
    last_failure: datetime | None = None


def delay_for(failures: int, last_failure: datetime | None, now: datetime, base: float, cap: float) -> float:
    """Seconds still to wait after ``failures`` consecutive failures, the last at ``last_failure``."""
    if failures <= 0 or last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = (now - last_failure).total_seconds()
    return 0.0 if delay < elapsed else delay - elapsed


class BackoffStore:
    def __init__(self) -> None:
        self._records: dict[str, BackoffRecord] = {}

    def update(self, record: BackoffRecord) -> None:
        self._records[record.key] = record

    def remove(self, key: str) -> None:
        self._records.pop(key, None)

    def new_record(self, key: str, succeeded: Iterable[JSON], failed: Iterable[JSON]) -> BackoffRecord:
        """The record once the newly finished Pods are taken in: a success resets the count to the
        failures that finished after it."""
        old = self._records.get(key, BackoffRecord(key))
        success_times = sorted(finished_time(p) for p in succeeded)
        failure_times = sorted(finished_time(p) for p in failed)
        if not success_times:
            if not failure_times:
                return old
            return BackoffRecord(key, old.failures_after_last_success + len(failure_times), failure_times[-1])
        after = [t for t in failure_times if t > success_times[-1]]
        return BackoffRecord(key, len(after), after[-1] if after else None)


def remaining_per_index(last_failed: JSON | None, now: datetime, base: float, cap: float) -> float:
    if last_failed is None:
        return 0.0
    return delay_for(absolute_failure_count(last_failed) + 1, finished_time(last_failed), now, base, cap)
