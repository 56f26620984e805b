"""The in-memory store: current state, the revision counter and write semantics for every local backend.

``MemoryStore`` is the test backend and the shared core: ``SqliteStore`` subclasses it and only changes
how a write becomes durable (``_commit``) and how state is loaded at start. Keeping one implementation of
conflict checks, revision stamping and watch fan-out means both backends behave identically.

Shape, chosen for speed:

* Current state is a ``SortedDict`` key -> ``KeyValue``; get, list and count never touch disk and list
  paging is a pair of bisections.
* Writes run synchronously on the event loop up to ``_commit``: the conflict check, the next revision and
  the in-memory update happen without yielding, so no lock is needed and the next write's check sees this
  one. The writer, watchers and readers only hear of it once it is durable: a read takes its snapshot at
  once, then waits (``_settle``) until the revision it reflects is committed, so under write load a read
  on sqlite may wait one group commit; with no writes in flight it never waits.
* Values are shared, read-only dicts. The store stamps ``metadata.resourceVersion`` on a copy of the top
  level and of ``metadata`` only; nested structures stay shared with the caller's dict.
"""

from __future__ import annotations

from typing import Any

from sortedcontainers import SortedDict

from nanokube.store.interface import (
    JSON,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StoreError,
)
from nanokube.store.watch import StoreWatcher, WatchHub


def stamp(value: JSON, revision: int) -> JSON:
    """A shallow copy of ``value`` whose ``metadata.resourceVersion`` is ``revision``; ``value`` is untouched."""
    metadata: Any = value.get("metadata")
    new_metadata = dict(metadata) if isinstance(metadata, dict) else {}
    new_metadata["resourceVersion"] = str(revision)
    stamped = dict(value)
    stamped["metadata"] = new_metadata
    return stamped


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no upper bound)."""
    trimmed = prefix
    while trimmed:
        last = ord(trimmed[-1])
        if last < 0x10FFFF:
            return trimmed[:-1] + chr(last + 1)
        trimmed = trimmed[:-1]
    return None


class MemoryStore:
    """A complete store held in memory; writes are "durable" at once and events dispatched right away."""

    def __init__(self, *, window: int = 10000, watcher_buffer: int = 10000) -> None:
        self._items: SortedDict = SortedDict()  # key -> KeyValue
        self._revision = 0
        self._hub = WatchHub(window=window, watcher_buffer=watcher_buffer)
        self._closed = False
        self._failure: BaseException | None = None

    # -- properties --------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest revision assigned (reads already reflect it)."""
        return self._revision

    @property
    def compacted_revision(self) -> int:
        """Watches with ``after_revision`` below this raise ``Compacted``; history above it is retained."""
        return self._hub.floor

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to load; present for the ``Store`` contract."""

    async def close(self) -> None:
        """Refuse further writes and end every open watch."""
        self._closed = True
        self._hub.close()

    # -- reads -------------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        item: KeyValue | None = self._items.get(key)
        await self._settle(self._revision)
        return item

    async def list(self, prefix: str, *, start_after: str = "", limit: int = 0) -> ListResult:
        """Current values under ``prefix`` sorted by key, strictly after ``start_after``; ``limit`` 0 = all."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        low, high = self._bounds(prefix)
        start = max(low, self._items.bisect_right(start_after)) if start_after else low
        start = min(start, high)
        end = high if limit == 0 else min(high, start + limit)
        items: list[KeyValue] = self._items.values()[start:end]
        revision = self._revision
        await self._settle(revision)
        return ListResult(items=items, revision=revision, more=end < high, remaining=high - end)

    async def count(self, prefix: str) -> int:
        low, high = self._bounds(prefix)
        await self._settle(self._revision)
        return high - low

    async def _settle(self, revision: int) -> None:
        """Return once every write up to ``revision`` is durable, so a read never hands out state that
        a crash could take back. Memory: always durable."""

    def _bounds(self, prefix: str) -> tuple[int, int]:
        # Index range [low, high) of the sorted keys that start with ``prefix``.
        low = self._items.bisect_left(prefix) if prefix else 0
        end = prefix_end(prefix)
        high = self._items.bisect_left(end) if end is not None else len(self._items)
        return low, high

    # -- writes ------------------------------------------------------------------------------------

    async def create(self, key: str, value: JSON) -> KeyValue:
        """Store a new key at the next revision; raises ``KeyExists``."""
        self._check_writable()
        if key in self._items:
            raise KeyExists(key)
        revision = self._revision + 1
        kv = KeyValue(key, stamp(value, revision), revision, revision)
        return await self._apply(kv, Event("ADDED", key, kv.value, revision), 0)

    async def update(self, key: str, value: JSON, *, expected_revision: int = 0) -> KeyValue:
        """Replace ``key``'s value; raises ``KeyNotFound`` or ``RevisionMismatch``."""
        self._check_writable()
        old = self._current(key, expected_revision)
        revision = self._revision + 1
        kv = KeyValue(key, stamp(value, revision), revision, old.create_revision)
        return await self._apply(
            kv, Event("MODIFIED", key, kv.value, revision, prev=old.value), old.mod_revision
        )

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Remove ``key``; returns its last value stamped with the delete's revision."""
        self._check_writable()
        old = self._current(key, expected_revision)
        revision = self._revision + 1
        kv = KeyValue(key, stamp(old.value, revision), revision, old.create_revision)
        return await self._apply(
            kv, Event("DELETED", key, kv.value, revision, prev=old.value), old.mod_revision
        )

    async def _apply(self, kv: KeyValue, event: Event, prev_revision: int) -> KeyValue:
        # Everything up to _commit runs without yielding: the revision and the state change together,
        # and an encoding error leaves the store untouched.
        encoded = self._encode(kv.value)
        self._revision = kv.mod_revision
        if event.type == "DELETED":
            del self._items[kv.key]
        else:
            self._items[kv.key] = kv
        await self._commit(event, kv.create_revision, prev_revision, encoded)
        return kv

    def _current(self, key: str, expected_revision: int) -> KeyValue:
        old: KeyValue | None = self._items.get(key)
        if old is None:
            raise KeyNotFound(key)
        if expected_revision and old.mod_revision != expected_revision:
            raise RevisionMismatch(key, expected_revision, old.mod_revision)
        return old

    def _check_writable(self) -> None:
        if self._failure is not None:
            raise StoreError(f"store failed and must be restarted: {self._failure}") from self._failure
        if self._closed:
            raise StoreError("store is closed")

    def _encode(self, value: JSON) -> bytes | None:
        """The value as the backend persists it; raising here rejects the write. Memory keeps the dict."""
        return None

    async def _commit(
        self, event: Event, create_revision: int, prev_revision: int, encoded: bytes | None
    ) -> None:
        """Make one applied change durable, then tell watchers. Memory: nothing to persist."""
        self._hub.dispatch(event)

    # -- watch -------------------------------------------------------------------------------------

    def watch(self, prefix: str, after_revision: int) -> StoreWatcher:
        """Events under ``prefix`` after ``after_revision``, then live ones; raises ``Compacted`` at once
        when ``after_revision`` is below ``compacted_revision``."""
        return self._hub.watch(prefix, after_revision)
