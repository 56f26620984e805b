"""Watch responses: newline-delimited JSON events over a chunked HTTP response.

Semantics follow kube-apiserver (see shared/reference/kubectl-compat.md §4.4):

* no resourceVersion (or "0"): synthetic ADDED events for the current state, then changes;
* resourceVersion N: changes after N, or one ERROR event with 410 Expired when N is compacted;
* ``sendInitialEvents=true`` (WatchList, used by ``kubectl wait``/``rollout status``/``delete``): the current
  state as ADDED events, then a BOOKMARK annotated ``k8s.io/initial-events-end``, then changes;
* label and field selectors apply to events, and an object that stops (starts) matching is sent as DELETED
  (ADDED);
* ``allowWatchBookmarks``: a BOOKMARK with the current revision every ``bookmark_interval`` seconds;
* ``timeoutSeconds`` ends the stream; clients resume from the last revision they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from nanokube.api.errors import ApiError, Expired
from nanokube.api.fields import FieldSelector
from nanokube.api.labels import Selector
from nanokube.api.registry import Resource
from nanokube.store.interface import Compacted, Event

from .storage import ObjectStorage

JSON = dict[str, Any]
# Turns one object into what the event carries (identity for JSON, a one-row Table for kubectl get -w).
Render = Callable[[JSON, bool], Any]


@dataclass
class WatchRequest:
    resource: Resource
    namespace: str
    resource_version: str
    label_selector: Selector | None
    field_selector: FieldSelector | None
    send_initial_events: bool
    allow_bookmarks: bool
    timeout: float | None
    matcher: Callable[[JSON], bool] | None = None


class WatchStream:
    def __init__(self, storage: ObjectStorage, *, bookmark_interval: float = 60.0) -> None:
        self.storage = storage
        self.bookmark_interval = bookmark_interval

    async def serve(self, request: web.Request, wreq: WatchRequest, render: Render | None,
                    content_type: str) -> web.StreamResponse:
        resource = wreq.resource
        # Snapshot and revision are taken together (the store is in memory; no await in between matters
        # because list returns the revision it reflects).
        initial: list[JSON] = []
        start_revision: int
        rv = wreq.resource_version
        if wreq.send_initial_events or rv in ("", "0"):
            page = await self.storage.store.list(resource.key_prefix(wreq.namespace))
            start_revision = page.revision
            converted = (self.storage.external(resource, kv.value) for kv in page.items)
            initial = [obj for obj in converted if self._matches(wreq, obj)]
        else:
            start_revision = int(rv)
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type,
                                                           "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        first = True

        def line(event_type: str, obj: Any) -> bytes:
            return orjson.dumps({"type": event_type, "object": obj}) + b"\n"

        def rendered(obj: JSON) -> Any:
            nonlocal first
            if render is None:
                return obj
            out = render(obj, first)
            first = False
            return out

        try:
            watcher = self.storage.store.watch(resource.key_prefix(wreq.namespace), start_revision)
        except Compacted as err:
            status = Expired.too_old(err.requested, err.oldest).to_status()
            await response.write(line("ERROR", status))
            await response.write_eof()
            return response
        timeout = wreq.timeout if wreq.timeout is not None else random.uniform(1800, 3600)
        try:
            async with asyncio.timeout(timeout):
                if initial:
                    await response.write(b"".join(line("ADDED", rendered(obj)) for obj in initial))
                if wreq.send_initial_events:
                    await response.write(line("BOOKMARK", self._bookmark(resource, start_revision, True)))
                await self._pump(response, wreq, watcher, line, rendered, plain=render is None)
        except TimeoutError:
            pass
        except ConnectionResetError:
            return response  # the client went away: nothing to report, the watcher is closed below
        finally:
            watcher.close()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _pump(self, response: web.StreamResponse, wreq: WatchRequest, watcher: Any,
                    line: Callable[[str, Any], bytes], rendered: Callable[[JSON], Any], *, plain: bool) -> None:
        """Send events as they come; events already waiting go out together in one write."""
        iterator = watcher.__aiter__()
        last_revision = 0
        while True:
            try:
                if wreq.allow_bookmarks:
                    event: Event = await asyncio.wait_for(iterator.__anext__(), self.bookmark_interval)
                else:
                    event = await iterator.__anext__()
            except TimeoutError:
                revision = max(last_revision, self.storage.store.revision)
                await response.write(line("BOOKMARK", self._bookmark(wreq.resource, revision, False)))
                continue
            except StopAsyncIteration:
                return
            except Compacted as err:
                status = Expired.too_old(err.requested, err.oldest).to_status()
                await response.write(line("ERROR", status))
                return
            chunks: list[bytes] = []
            while True:
                last_revision = event.revision
                chunk = self._encode(wreq, event, line, rendered, plain=plain)
                if chunk:
                    chunks.append(chunk)
                if not getattr(watcher, "ready", lambda: 0)() or len(chunks) >= 256:
                    break
                event = await iterator.__anext__()
            if chunks:
                await response.write(b"".join(chunks))

    def _encode(self, wreq: WatchRequest, event: Event, line: Callable[[str, Any], bytes],
                rendered: Callable[[JSON], Any], *, plain: bool) -> bytes:
        out = self._translate(wreq, event)
        if out is None:
            return b""
        event_type, obj = out
        if plain and event_type == event.type and obj is event.value:
            # Fan-out fast path: encode each plain event once for all watchers.
            data: bytes | None = event.cache.get(event_type)
            if data is None:
                data = event.cache[event_type] = line(event_type, obj)
            return data
        return line(event_type, rendered(obj))

    def _translate(self, wreq: WatchRequest, event: Event) -> tuple[str, JSON] | None:
        """Apply selectors: changes of objects entering or leaving the selection become ADDED/DELETED."""
        value = self.storage.external(wreq.resource, event.value)
        if not (wreq.label_selector or wreq.field_selector):
            return event.type, value
        now_matches = event.type != "DELETED" and self._matches(wreq, value)
        prev = self.storage.external(wreq.resource, event.prev) if event.prev is not None else None
        was_matching = prev is not None and self._matches(wreq, prev)
        if event.type == "DELETED":
            return ("DELETED", value) if self._matches(wreq, value) else None
        if now_matches and was_matching:
            return "MODIFIED", value
        if now_matches:
            return "ADDED", value
        if was_matching:
            return "DELETED", value
        return None

    def _matches(self, wreq: WatchRequest, obj: JSON) -> bool:
        if wreq.matcher is None:
            wreq.matcher = self.storage.matcher(wreq.resource, wreq.label_selector, wreq.field_selector)
        return wreq.matcher(obj)

    @staticmethod
    def _bookmark(resource: Resource, revision: int, initial_end: bool) -> JSON:
        meta: JSON = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}


def watch_error_line(err: ApiError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n"
