"""Expectations (``UIDTrackingControllerExpectations``), and ``WrittenStatus``: the creates and deletes a controller has sent and waits
to see in its informer cache. Until they are seen (or expire after five minutes) the controller does not act on
the owner again, so a cache that lags its own writes never causes a second round of creates or deletes.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from nanokube.api.objects import json_equal

EXPECTATIONS_TTL = 300.0

@dataclass
class _Expected:
    adds: int
    deletes: set[str]
    at: float


class Expectations:
    """``UIDTrackingControllerExpectations``: creates and deletes a controller waits to see in its cache."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._items: dict[Hashable, _Expected] = {}

    def satisfied(self, key: Hashable) -> bool:
        item = self._items.get(key)
        if item is None or (item.adds <= 0 and not item.deletes):
            return True
        return time.monotonic() - item.at > self.ttl  # expired: whatever we waited for is not coming

    def expect_creations(self, key: Hashable, count: int) -> None:
        self._items[key] = _Expected(count, set(), time.monotonic())

    def expect_deletions(self, key: Hashable, pod_keys: Iterable[str]) -> None:
        self._items[key] = _Expected(0, set(pod_keys), time.monotonic())

    def creation_observed(self, key: Hashable) -> None:
        item = self._items.get(key)
        if item is not None:
            item.adds -= 1

    def deletion_observed(self, key: Hashable, pod_key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.deletes.discard(pod_key)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)


class WrittenStatus:
    """The status this controller last wrote for each owner, as the server returned it.

    An owner's event whose only change is that status is the echo of our own write and need not wake the
    owner; and a status that looks already written in a lagging cache is written anyway when it is not what
    we wrote last (else a stale cache could hide our own newer write and the right status would never land).
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}

    def remember(self, key: Hashable, status: Any) -> None:
        self._items[key] = status

    def is_echo(self, key: Hashable, status: Any) -> bool:
        return key in self._items and json_equal(self._items[key], status)

    def consistent(self, key: Hashable, cached: Any) -> bool:
        """The cache shows what we wrote last (or we never wrote): trusting it cannot lose our write."""
        return key not in self._items or json_equal(self._items[key], cached)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)
