"""Every namespace gets a ``default`` ServiceAccount, as kube-controller-manager's serviceaccounts
controller ensures (Pods name it unless they say otherwise)."""

from __future__ import annotations

from collections.abc import Hashable

from nanokube.api.errors import AlreadyExists, Forbidden, NotFound
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        namespaces = client.registry.get("", "v1", "namespaces")
        accounts = client.registry.get("", "v1", "serviceaccounts")
        assert namespaces is not None and accounts is not None
        self.accounts_res = accounts
        self.namespaces = self.informer(Informer(client, namespaces))
        self.accounts = self.informer(Informer(client, accounts, field_selector="metadata.name=default"))
        self.namespaces.add_handler(lambda kind, obj, old: self._enqueue(obj["metadata"]["name"]))
        self.accounts.add_handler(lambda kind, obj, old: self._enqueue(obj["metadata"]["namespace"])
                                  if kind == "DELETED" else None)

    def _enqueue(self, namespace: str) -> None:
        self.queue.add(namespace)

    async def sync(self, key: Hashable) -> float | None:
        namespace = str(key)
        ns: JSON | None = self.namespaces.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        if self.accounts.get(f"{namespace}/default") is not None:
            return None
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        try:
            await self.client.create(self.accounts_res, namespace, body)
        except (AlreadyExists, Forbidden, NotFound):
            pass  # exists already, or the namespace is going away
        return None
