"""Watch fan-out shared by every in-process store backend: a ring of recent events plus live watchers.

The store calls ``WatchHub.dispatch`` once per committed change, in revision order, on the event loop.
The hub keeps the newest ``window`` events in a ring so a watch may start from a recent revision, and
appends each event to the bounded buffer of every watcher whose prefix matches. One ``Event`` object is
shared by all watchers (encoders cache their bytes on it), so fan-out costs a reference per watcher.

Watchers are grouped by prefix: dispatch checks each distinct prefix once, which stays cheap when
thousands of watchers (kubelets, informers) share the same few prefixes.

Nothing is dropped silently. A watcher that asks for a revision older than the ring gets ``Compacted``
at once; a watcher whose buffer overflows is cut off, and its next iteration raises ``Compacted`` so the
client relists.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from nanokube.store.interface import Compacted, Event


class StoreWatcher:
    """One open watch: ``async for ev in watcher``; raises ``Compacted`` if it fell behind."""

    __slots__ = ("_buffer", "_closed", "_expired", "_hub", "_last", "_limit", "_replay", "_waiter", "prefix")

    def __init__(
        self, hub: WatchHub, prefix: str, after_revision: int, limit: int, replay: list[Event]
    ) -> None:
        self._hub = hub
        self.prefix = prefix
        self._limit = limit
        # Replayed history is bounded by the ring; only live events count against ``limit``.
        self._replay: deque[Event] = deque(replay)
        self._buffer: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._expired: Compacted | None = None
        self._closed = False
        self._last = after_revision  # newest revision handed to the consumer

    def __aiter__(self) -> StoreWatcher:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._expired is not None:
                raise self._expired
            if self._replay:
                return self._take(self._replay)
            if self._buffer:
                return self._take(self._buffer)
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop the watch; a consumer blocked in iteration ends with ``StopAsyncIteration``."""
        if self._closed:
            return
        self._closed = True
        self._hub._unregister(self)
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    def ready(self) -> int:
        """How many events the next iterations return without waiting (0 once expired)."""
        return 0 if self._expired is not None else len(self._replay) + len(self._buffer)

    def _take(self, queue: deque[Event]) -> Event:
        event = queue.popleft()
        self._last = event.revision
        return event

    def _push(self, event: Event) -> None:
        if len(self._buffer) >= self._limit:
            self._expire()
            return
        self._buffer.append(event)
        self._wake()

    def _expire(self) -> None:
        # The consumer gets Compacted on its next iteration; buffered events are released at once.
        self._expired = Compacted(self._last, self._hub.floor)
        self._replay.clear()
        self._buffer.clear()
        self._closed = True
        self._hub._unregister(self)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class WatchHub:
    """The ring of recent events and the registry of live watchers for one store."""

    def __init__(self, *, window: int = 10000, watcher_buffer: int = 10000) -> None:
        if window < 1 or watcher_buffer < 1:
            raise ValueError("window and watcher_buffer must be positive")
        self._ring: deque[Event] = deque(maxlen=window)
        self._watcher_buffer = watcher_buffer
        self._by_prefix: dict[str, set[StoreWatcher]] = {}
        # Watches from after_revision >= floor can be served: every event above floor is in the ring.
        self.floor = 0
        self.last_revision = 0  # newest revision dispatched

    def seed(self, events: Iterable[Event], *, floor: int, last_revision: int) -> None:
        """Load history after a restart: ``events`` hold every revision in (floor, last_revision]."""
        self._ring.clear()
        self._ring.extend(events)
        self.floor = floor
        if len(self._ring) == self._ring.maxlen and self._ring:
            self.floor = max(floor, self._ring[0].revision - 1)
        self.last_revision = last_revision

    def dispatch(self, event: Event) -> None:
        """Record one committed event and hand it to every watcher whose prefix matches its key."""
        ring = self._ring
        if len(ring) == ring.maxlen:
            self.floor = ring[0].revision
        ring.append(event)
        self.last_revision = event.revision
        key = event.key
        for prefix, watchers in list(self._by_prefix.items()):
            if key.startswith(prefix):
                for watcher in list(watchers):
                    watcher._push(event)

    def compact(self, revision: int) -> None:
        """Forget history at or below ``revision`` (the backend compacted its log there)."""
        if revision <= self.floor:
            return
        self.floor = revision
        ring = self._ring
        while ring and ring[0].revision <= revision:
            ring.popleft()

    def watch(self, prefix: str, after_revision: int) -> StoreWatcher:
        """Open a watch for events under ``prefix`` after ``after_revision``; raises ``Compacted``."""
        if after_revision < self.floor:
            raise Compacted(after_revision, self.floor)
        watcher = StoreWatcher(
            self, prefix, after_revision, self._watcher_buffer, self._replay(prefix, after_revision)
        )
        self._by_prefix.setdefault(prefix, set()).add(watcher)
        return watcher

    def close(self) -> None:
        """End every open watch (the store is shutting down)."""
        for watchers in list(self._by_prefix.values()):
            for watcher in list(watchers):
                watcher.close()

    def fail(self) -> None:
        """Cut off every watcher with ``Compacted`` (the backend lost events and cannot continue)."""
        for watchers in list(self._by_prefix.values()):
            for watcher in list(watchers):
                watcher._expire()

    @property
    def watcher_count(self) -> int:
        return sum(len(watchers) for watchers in self._by_prefix.values())

    def _replay(self, prefix: str, after_revision: int) -> list[Event]:
        # Walk back from the newest event: cost is the length of the replay, not of the ring.
        found: list[Event] = []
        for event in reversed(self._ring):
            if event.revision <= after_revision:
                break
            if event.key.startswith(prefix):
                found.append(event)
        found.reverse()
        return found

    def _unregister(self, watcher: StoreWatcher) -> None:
        watchers = self._by_prefix.get(watcher.prefix)
        if watchers is None:
            return
        watchers.discard(watcher)
        if not watchers:
            del self._by_prefix[watcher.prefix]
