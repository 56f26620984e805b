"""The garbage collector: ownerReferences, followed the way kube-controller-manager follows them.

It keeps a graph of every stored object's owners (one informer per resource) and reacts three ways:

* an object whose owners are all gone is deleted (background cascade); dangling references to some gone
  owners are removed while others remain;
* an owner being deleted with the ``foregroundDeletion`` finalizer has its dependents deleted (in the
  foreground too), and loses the finalizer once no dependent that blocks owner deletion is left;
* an owner being deleted with the ``orphan`` finalizer has its reference removed from every dependent, then
  loses the finalizer.

The graph may lag the store, so an owner is never judged gone without a GET that confirms it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field

from nanokube.api.errors import NotFound
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Resource
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller

log = logging.getLogger(__name__)


@dataclass
class Node:
    resource: Resource
    namespace: str
    name: str
    owners: list[JSON] = field(default_factory=list)
    finalizers: list[str] = field(default_factory=list)
    deleting: bool = False


class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 2

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.graph: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self._watched: set[tuple[str, str, str]] = set()
        for resource in list(client.registry):
            self._watch(resource)

    def _watch(self, resource: Resource) -> None:
        if not resource.stored or "watch" not in resource.verbs or "delete" not in resource.verbs:
            return
        key = (resource.group, resource.version, resource.plural)
        if key in self._watched:
            return
        self._watched.add(key)
        informer = self.informer(Informer(self.client, resource))
        informer.add_handler(lambda kind, obj, old: self._on_event(resource, kind, obj))

    def _on_event(self, resource: Resource, kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid")
        if not uid:
            return
        old = self.graph.get(uid)
        if old is not None:
            for ref in old.owners:
                self.dependents.get(ref.get("uid", ""), set()).discard(uid)
        if kind == "DELETED":
            self.graph.pop(uid, None)
            for dependent in list(self.dependents.get(uid, ())):
                self.queue.add(("check", dependent))
            return
        node = Node(resource, meta.get("namespace", ""), meta["name"], list(meta.get("ownerReferences") or []),
                    list(meta.get("finalizers") or []), bool(meta.get("deletionTimestamp")))
        self.graph[uid] = node
        for ref in node.owners:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(uid)
        if node.owners:
            self.queue.add(("check", uid))
        if node.deleting and ("foregroundDeletion" in node.finalizers or "orphan" in node.finalizers):
            self.queue.add(("owner", uid))
        # A dependent that changed may unblock its deleting owner.
        for ref in node.owners:
            owner = self.graph.get(ref.get("uid", ""))
            if owner is not None and owner.deleting:
                self.queue.add(("owner", ref["uid"]))

    async def sync(self, key: Hashable) -> float | None:
        assert isinstance(key, tuple)
        action: str = key[0]
        uid: str = key[1]
        node = self.graph.get(uid)
        if node is None:
            return None
        if action == "check":
            return await self._check_owners(uid, node)
        return await self._process_owner(uid, node)

    async def _owner_exists(self, node: Node, ref: JSON) -> bool:
        owner = self.graph.get(ref.get("uid", ""))
        if owner is not None:
            return True
        resource = self.client.registry.by_api_version(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource is None:
            return True  # an owner kind this server does not serve: leave the dependent alone
        try:
            live = await self.client.get(resource, node.namespace if resource.namespaced else "", ref["name"])
        except NotFound:
            return False
        return bool(live["metadata"].get("uid") == ref.get("uid"))

    async def _check_owners(self, uid: str, node: Node) -> float | None:
        if node.deleting:
            return None
        gone = [ref for ref in node.owners if not await self._owner_exists(node, ref)]
        if not gone:
            return None
        if len(gone) == len(node.owners):
            policy = "Foreground" if any(self._owner_foreground(ref) for ref in gone) else "Background"
            log.info("deleting %s %s/%s: its owners are gone", node.resource.kind, node.namespace, node.name)
            try:
                await self.client.delete(node.resource, node.namespace, node.name, propagation=policy, uid=uid)
            except NotFound:
                pass
            return None
        gone_uids = {ref.get("uid") for ref in gone}
        await self._edit(node, lambda obj: self._drop_refs(obj, gone_uids))
        return None

    def _owner_foreground(self, ref: JSON) -> bool:
        return False

    async def _process_owner(self, uid: str, node: Node) -> float | None:
        if not node.deleting:
            return None
        dependents = [self.graph[d] for d in self.dependents.get(uid, ()) if d in self.graph]
        if "orphan" in node.finalizers:
            for dep in dependents:
                await self._edit(dep, lambda obj: self._drop_refs(obj, {uid}))
            await self._edit(node, lambda obj: self._drop_finalizer(obj, "orphan"))
            return None
        if "foregroundDeletion" in node.finalizers:
            blocking = 0
            for dep in dependents:
                refs = [r for r in dep.owners if r.get("uid") == uid]
                if any(r.get("blockOwnerDeletion") for r in refs):
                    blocking += 1
                if not dep.deleting:
                    try:
                        await self.client.delete(dep.resource, dep.namespace, dep.name, propagation="Foreground")
                    except NotFound:
                        pass
            if blocking:
                return 0.5
            await self._edit(node, lambda obj: self._drop_finalizer(obj, "foregroundDeletion"))
        return None

    @staticmethod
    def _drop_refs(obj: JSON, uids: set[str | None]) -> bool:
        refs = obj["metadata"].get("ownerReferences") or []
        kept = [r for r in refs if r.get("uid") not in uids]
        if len(kept) == len(refs):
            return False
        if kept:
            obj["metadata"]["ownerReferences"] = kept
        else:
            obj["metadata"].pop("ownerReferences", None)
        return True

    @staticmethod
    def _drop_finalizer(obj: JSON, finalizer: str) -> bool:
        finalizers = obj["metadata"].get("finalizers") or []
        if finalizer not in finalizers:
            return False
        obj["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
        return True

    async def _edit(self, node: Node, change: object) -> None:
        """Read, change, write back with the read's resourceVersion; retried on conflicts by the worker."""
        try:
            live = await self.client.get(node.resource, node.namespace, node.name)
        except NotFound:
            return
        obj = deep_copy(live)
        if not change(obj):  # type: ignore[operator]
            return
        await self.client.update(node.resource, node.namespace, obj)

    async def run(self, *, stop: asyncio.Event) -> None:
        watcher = asyncio.create_task(self._follow_registry(stop), name="gc-registry")
        try:
            await super().run(stop=stop)
        finally:
            watcher.cancel()

    async def _follow_registry(self, stop: asyncio.Event, period: float = 1.0) -> None:
        """Resources served after start (custom resources) get an informer too."""
        tasks: list[asyncio.Task[None]] = []
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), period)
                known = len(self.informers)
                for resource in list(self.client.registry):
                    self._watch(resource)
                for informer in self.informers[known:]:
                    tasks.append(asyncio.create_task(informer.run(stop=stop), name="gc-informer"))
        finally:
            for task in tasks:
                task.cancel()
