"""Informers: a local cache of one resource kept current by list-then-watch.

``Informer.run`` lists, then watches from the list's revision, and relists when the watch expires (410) or
breaks. Handlers get (event type, object, old object) after the cache is updated; they should only enqueue
keys. ``synced`` is set once the first list is in the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nanokube.api.errors import ApiError, Expired
from nanokube.api.registry import Resource

from .interface import JSON, Client

log = logging.getLogger(__name__)
Handler = Callable[[str, JSON, JSON | None], None]


def object_key(obj: JSON) -> str:
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


class Informer:
    def __init__(self, client: Client, resource: Resource, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "") -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[str, JSON] = {}
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def get(self, key: str) -> JSON | None:
        return self.cache.get(key)

    def items(self) -> list[JSON]:
        return list(self.cache.values())

    def _emit(self, kind: str, obj: JSON, old: JSON | None) -> None:
        for handler in self.handlers:
            try:
                handler(kind, obj, old)
            except Exception:
                log.exception("informer handler failed for %s", self.resource.qualified)

    async def run(self, *, stop: asyncio.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            # The watch runs as its own task so that ``stop`` can cancel it: the event loop stays a plain
            # ``async for`` with no per-event futures.
            task = asyncio.create_task(self._list_and_watch())
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return
            try:
                task.result()
                delay = 0.1
            except Expired:
                log.debug("%s watch expired; relisting", self.resource.qualified)
            except (ApiError, OSError) as err:
                log.warning("%s watch failed (%s); retrying in %.1fs", self.resource.qualified, err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _list_and_watch(self) -> None:
        listed = await self.client.list(self.resource, self.namespace, label_selector=self.label_selector,
                                        field_selector=self.field_selector)
        fresh = {object_key(o): o for o in listed.items}
        for key, old in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                self._emit("DELETED", old, None)
        for key, obj in fresh.items():
            previous = self.cache.get(key)
            self.cache[key] = obj
            if previous is None:
                self._emit("ADDED", obj, None)
            elif previous["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", obj, previous)
        self.synced.set()
        stream = self.client.watch(self.resource, self.namespace, resource_version=listed.resource_version,
                                   label_selector=self.label_selector, field_selector=self.field_selector)
        try:
            async for event in stream:
                self._apply(event.type, event.object)
        finally:
            aclose: Any = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _apply(self, kind: str, obj: JSON) -> None:
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        old = self.cache.get(key)
        if kind == "DELETED":
            self.cache.pop(key, None)
            self._emit("DELETED", obj, old)
            return
        self.cache[key] = obj
        self._emit("ADDED" if old is None else "MODIFIED", obj, old)

