"""Expectations: what a controller has asked for and not yet seen in its informer cache.

After creating or deleting Pods for a Job, the controller does not trust its cache for that Job until the
informer has shown that many creations and deletions (or five minutes passed), so a stale cache never makes
it create the same Pods twice (``controller.ControllerExpectations``). ``FinalizerExpectations`` remembers
Pods whose tracking finalizer was removed but whose update has not arrived yet, so they are not counted
twice (``uidTrackingExpectations``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

EXPECTATIONS_TTL = 300.0


@dataclass
class _Pending:
    adds: int
    deletes: int
    at: float


class Expectations:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, _Pending] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Pending(count, 0, self._clock())

    def expect_deletions(self, key: str, count: int) -> None:
        self._items[key] = _Pending(0, count, self._clock())

    def creation_observed(self, key: str, count: int = 1) -> None:
        item = self._items.get(key)
        if item is not None:
            item.adds -= count

    def deletion_observed(self, key: str, count: int = 1) -> None:
        item = self._items.get(key)
        if item is not None:
            item.deletes -= count

    def satisfied(self, key: str) -> bool:
        item = self._items.get(key)
        if item is None:
            return True
        if item.adds <= 0 and item.deletes <= 0:
            return True
        return self._clock() - item.at > EXPECTATIONS_TTL

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


class FinalizerExpectations:
    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expect_removed(self, key: str, uids: Iterable[str]) -> None:
        self._uids.setdefault(key, set()).update(uids)

    def removal_observed(self, key: str, uid: str) -> None:
        pending = self._uids.get(key)
        if pending is not None:
            pending.discard(uid)
            if not pending:
                del self._uids[key]

    def expected(self, key: str) -> set[str]:
        return set(self._uids.get(key, ()))

    def forget(self, key: str) -> None:
        self._uids.pop(key, None)
