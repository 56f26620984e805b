"""Pod workers: every Pod is synced by its own worker, never two syncs of one Pod at once.

The kubelet gives each Pod a goroutine fed with updates; here a Pod's worker is a task that exists only while
there is work: ``update(key)`` starts one (or, if one is running, makes it sync once more when it finishes),
and the task ends when the Pod is in the state it wants. A sync returns how many seconds until it wants to look
again (a back-off ending, a readiness delay), which becomes a timer, not a sleeping task, so ten thousand quiet
Pods cost ten thousand dict entries. A sync that raises is retried with exponential back-off.

Keys are opaque strings (the kubelet uses Pod UIDs); ``sync(key)`` finds the Pod itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
SyncFn = Callable[[str], Awaitable[float | None]]


class PodWorkers:
    def __init__(self, sync: SyncFn, *, retry_base: float = 0.5, retry_max: float = 30.0) -> None:
        self._sync = sync
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._failures: dict[str, int] = {}
        self._closed = False

    def update(self, key: str) -> None:
        """Sync ``key`` soon: now if its worker is idle, right after the current sync otherwise."""
        if self._closed:
            return
        if key in self._tasks:
            self._again.add(key)
            return
        self._tasks[key] = asyncio.get_running_loop().create_task(self._work(key), name=f"pod-worker {key}")

    def update_after(self, key: str, delay: float) -> None:
        """Sync ``key`` in ``delay`` seconds (an earlier pending request wins)."""
        if self._closed:
            return
        if delay <= 0:
            self.update(key)
            return
        loop = asyncio.get_running_loop()
        old = self._timers.get(key)
        if old is not None:
            if old.when() <= loop.time() + delay:
                return
            old.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.update(key)

    def forget(self, key: str) -> None:
        """Drop timers and failure counts of ``key`` (its Pod is gone)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def busy(self, key: str) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    async def _work(self, key: str) -> None:
        try:
            while True:
                self._again.discard(key)
                timer = self._timers.pop(key, None)
                if timer is not None:
                    timer.cancel()  # this sync decides when to look next
                try:
                    delay = await self._sync(key)
                    self._failures.pop(key, None)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures = self._failures.get(key, 0)
                    self._failures[key] = failures + 1
                    delay = min(self.retry_base * (2 ** failures), self.retry_max)
                    log.exception("sync of pod %s failed; retrying in %.1fs", key, delay)
                if key not in self._again:
                    if delay is not None:
                        self.update_after(key, delay)
                    return
        finally:
            self._tasks.pop(key, None)

    async def shutdown(self) -> None:
        """Stop every worker and timer."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
