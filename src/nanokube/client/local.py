"""The in-process client: the ``Client`` contract served straight from the API server's object storage.

Components in the same process as the API server (``nanokube up``) use it: no HTTP, no JSON encoding, same
semantics and errors. The storage is passed in by ``cmd`` as any object with ObjectStorage's methods, so this
layer never imports the API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from nanokube.api import patch as patching
from nanokube.api.errors import BadRequest, Conflict, Expired, NotFound
from nanokube.api.fields import field_set, parse_field_selector
from nanokube.api.labels import parse_selector
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Registry, Resource

from .interface import JSON, ObjectList, PatchType, WatchEvent


class _Page(Protocol):
    items: list[JSON]
    resource_version: str


class Backend(Protocol):
    """What LocalClient needs of the API server's ObjectStorage."""

    registry: Registry
    store: Any

    async def get(self, resource: Resource, namespace: str, name: str) -> JSON: ...

    async def list_objects(self, resource: Resource, namespace: str, opts: Any) -> Any: ...

    async def create(self, resource: Resource, namespace: str, obj: JSON, *, dry_run: bool = False) -> JSON: ...

    async def update(self, resource: Resource, namespace: str, name: str, mutate: Callable[[JSON | None], JSON],
                     *, subresource: str = "", dry_run: bool = False, create_if_missing: bool = False) -> Any: ...

    async def delete(self, resource: Resource, namespace: str, name: str, opts: Any) -> tuple[JSON, bool]: ...


class LocalClient:
    def __init__(self, backend: Backend, list_options: Callable[..., Any], delete_options: Callable[..., Any],
                 subresources: Any = None) -> None:
        """``subresources`` answers what is not a plain object write: namespace finalize, pod binding and
        eviction (the API server's Subresources)."""
        self.backend = backend
        self.registry = backend.registry
        self._list_options = list_options
        self._delete_options = delete_options
        self._sub = subresources

    async def get(self, resource: Resource, namespace: str, name: str) -> JSON:
        return await self.backend.get(resource, namespace, name)

    async def list(self, resource: Resource, namespace: str = "", *, label_selector: str = "",
                   field_selector: str = "") -> ObjectList:
        opts = self._list_options(
            label_selector=parse_selector(label_selector) if label_selector else None,
            field_selector=parse_field_selector(field_selector) if field_selector else None)
        page = await self.backend.list_objects(resource, namespace, opts)
        return ObjectList(page.items, page.resource_version)

    async def watch(self, resource: Resource, namespace: str = "", *, resource_version: str = "",
                    label_selector: str = "", field_selector: str = "") -> AsyncIterator[WatchEvent]:
        labels = parse_selector(label_selector) if label_selector else None
        fields = parse_field_selector(field_selector) if field_selector else None

        def matches(obj: JSON) -> bool:
            if labels is not None and not labels.matches(obj["metadata"].get("labels") or {}):
                return False
            return fields is None or fields.matches(field_set(resource.group, resource.kind, obj))

        store = self.backend.store
        prefix = resource.key_prefix(namespace)
        if not resource_version:
            page = await store.list(prefix)
            after = page.revision
            for kv in page.items:
                if matches(kv.value):
                    yield WatchEvent("ADDED", kv.value, kv.mod_revision)
        else:
            after = int(resource_version)
        try:
            watcher = store.watch(prefix, after)
        except Exception as err:
            raise Expired(str(err)) from err
        try:
            async for event in watcher:
                now = event.type != "DELETED" and matches(event.value)
                before = event.prev is not None and matches(event.prev)
                if event.type == "DELETED":
                    if matches(event.value):
                        yield WatchEvent("DELETED", event.value, event.revision)
                elif now and before:
                    yield WatchEvent("MODIFIED", event.value, event.revision)
                elif now:
                    yield WatchEvent("ADDED", event.value, event.revision)
                elif before:
                    yield WatchEvent("DELETED", event.value, event.revision)
        except Exception as err:
            if type(err).__name__ == "Compacted":
                raise Expired(str(err)) from err
            raise
        finally:
            watcher.close()

    async def create(self, resource: Resource, namespace: str, obj: JSON) -> JSON:
        return await self.backend.create(resource, namespace, obj)

    async def update(self, resource: Resource, namespace: str, obj: JSON, *, subresource: str = "") -> JSON:
        name = obj["metadata"]["name"]
        if resource.plural == "namespaces" and subresource == "finalize" and self._sub is not None:
            return await self._sub.finalize(name, obj)
        wanted = obj["metadata"].get("resourceVersion")

        def mutate(live: JSON | None) -> JSON:
            if live is not None and wanted and wanted != live["metadata"].get("resourceVersion"):
                raise Conflict.modified(resource.plural, resource.group, name)
            return deep_copy(obj)

        result = await self.backend.update(resource, namespace, name, mutate, subresource=subresource)
        return result.obj

    async def patch(self, resource: Resource, namespace: str, name: str, patch: Any, *,
                    patch_type: PatchType = "merge", subresource: str = "") -> JSON:
        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            if patch_type == "merge":
                result = patching.json_merge_patch(live, patch)
            elif patch_type == "json":
                result = patching.json_patch(live, patch)
            elif patch_type == "strategic":
                result = patching.strategic_merge_patch(live, patch, resource.definition or None)
            else:
                raise BadRequest(f"unknown patch type {patch_type}")
            rv = (result.get("metadata") or {}).get("resourceVersion")
            if rv and rv != live["metadata"].get("resourceVersion"):
                raise Conflict.modified(resource.plural, resource.group, name)
            return result

        result = await self.backend.update(resource, namespace, name, mutate, subresource=subresource)
        return result.obj

    async def delete(self, resource: Resource, namespace: str, name: str, *, propagation: str | None = None,
                     grace_period_seconds: int | None = None, uid: str | None = None,
                     resource_version: str | None = None) -> JSON:
        opts = self._delete_options(grace_period_seconds=grace_period_seconds, propagation_policy=propagation,
                                    precondition_uid=uid, precondition_resource_version=resource_version)
        obj, _ = await self.backend.delete(resource, namespace, name, opts)
        return obj

    async def bind(self, namespace: str, name: str, node: str) -> None:
        await self._sub.bind(namespace, name, {"target": {"kind": "Node", "name": node}})

    async def evict(self, namespace: str, name: str, *, grace_period_seconds: int | None = None) -> None:
        options = {} if grace_period_seconds is None else {"gracePeriodSeconds": grace_period_seconds}
        await self._sub.evict(namespace, name, {"deleteOptions": options})

    async def request_token(self, namespace: str, account: str, request: JSON) -> JSON:
        if self._sub is None or self._sub.tokens is None:
            raise NotFound.path()  # as a server without the token subresource answers
        answer: JSON = await self._sub.tokens.request(namespace, account, request)
        return answer
