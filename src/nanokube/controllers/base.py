"""The controller pattern: informer events enqueue keys; workers run a level-triggered ``sync(key)``.

A subclass sets up its informers in ``__init__`` (registering handlers that call ``self.queue.add``) and
implements ``sync``. ``sync`` reads the caches, compares desired with actual state and writes; it raises to
be retried with back-off, or returns a delay in seconds to be looked at again later (None: done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable

from nanokube.api.errors import Conflict
from nanokube.client.informer import Informer
from nanokube.client.interface import Client
from nanokube.client.workqueue import WorkQueue

log = logging.getLogger(__name__)


class Controller:
    name = "controller"
    workers = 1

    def __init__(self, client: Client) -> None:
        self.client = client
        self.queue = WorkQueue()
        self.informers: list[Informer] = []

    def informer(self, informer: Informer) -> Informer:
        self.informers.append(informer)
        return informer

    async def sync(self, key: Hashable) -> float | None:
        raise NotImplementedError

    async def run(self, *, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(i.run(stop=stop), name=f"{self.name}-informer") for i in self.informers]
        await asyncio.gather(*(i.synced.wait() for i in self.informers))
        tasks += [asyncio.create_task(self._worker(stop), name=f"{self.name}-worker") for _ in range(self.workers)]
        try:
            await stop.wait()
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _worker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            key = await self.queue.get()
            try:
                again = await self.sync(key)
            except Conflict:
                self.queue.add_rate_limited(key)  # a stale cache; the next look will be fresher
            except Exception:
                log.exception("%s: sync of %s failed; retrying", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            finally:
                self.queue.done(key)
            await asyncio.sleep(0)  # in-process writes may not yield: let informers catch up between syncs
