"""A control plane inside the test process: memory store, API server semantics, in-process client.

``InProcessCluster`` is a first-class fake, not a mock: the same ObjectStorage, strategies, admission and
seeding as ``nanokube up``, without sockets. Controller, scheduler and node tests build on it::

    async with InProcessCluster() as cluster:
        await cluster.client.create(pods, "default", pod)

``serve=True`` also listens on 127.0.0.1 (plain HTTP, no auth) for tests that want HTTP clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from nanokube.api.registry import Registry, Resource
from nanokube.apiserver.app import APIServer, APIServerSettings
from nanokube.apiserver.storage import ObjectStorage
from nanokube.client.local import LocalClient
from nanokube.store.memory import MemoryStore

from .cluster import local_client


class InProcessCluster:
    def __init__(self, *, serve: bool = False, window: int = 10000) -> None:
        self.store = MemoryStore(window=window)
        self.storage = ObjectStorage(self.store, Registry())
        self.server = APIServer(APIServerSettings(port=0), self.storage)
        self.client: LocalClient = local_client(self.storage, self.server)
        self.serve = serve
        self.url = ""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.client.registry.get(group, version, plural)
        if found is None:
            raise KeyError(f"{group}/{version}/{plural} is not served")
        return found

    async def __aenter__(self) -> InProcessCluster:
        await self.store.start()
        if self.serve:
            bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self.server.run(stop=self._stop, started=bound.set_result))
            self.url = f"http://127.0.0.1:{await bound}"
        else:
            await self.server.prepare()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.store.close()
