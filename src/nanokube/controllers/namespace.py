"""The namespace controller: a namespace being deleted loses all its contents, then itself.

On a namespace with a deletionTimestamp it deletes every namespaced object in it (each kind's own deletion
rules apply: finalizers, graceful pods), looks again until none are left, then empties ``spec.finalizers``
through ``namespaces/finalize``, after which the API server removes the namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from nanokube.api.errors import NotFound
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller

log = logging.getLogger(__name__)


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        resource = client.registry.get("", "v1", "namespaces")
        assert resource is not None
        self.namespaces = resource
        informer = self.informer(Informer(client, resource))
        informer.add_handler(self._on_event)

    def _on_event(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if kind != "DELETED" and obj["metadata"].get("deletionTimestamp"):
            self.queue.add(obj["metadata"]["name"])

    async def sync(self, key: Hashable) -> float | None:
        name = str(key)
        try:
            ns = await self.client.get(self.namespaces, "", name)
        except NotFound:
            return None
        if not ns["metadata"].get("deletionTimestamp"):
            return None
        remaining = 0
        for resource in list(self.client.registry):
            if not resource.namespaced or not resource.stored or "delete" not in resource.verbs:
                continue
            listed = await self.client.list(resource, name)
            for obj in listed.items:
                remaining += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(resource, name, obj["metadata"]["name"], propagation="Background")
                except NotFound:
                    remaining -= 1
        if remaining:
            log.debug("namespace %s: waiting for %d objects to go", name, remaining)
            return 1.0
        if (ns.get("spec") or {}).get("finalizers"):
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": []}}
            await self.client.update(self.namespaces, "", body, subresource="finalize")
        return None
