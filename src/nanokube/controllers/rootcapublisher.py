"""The ``kube-root-ca.crt`` ConfigMap in every namespace, as kube-controller-manager's root-ca-cert-publisher
keeps it: key ``ca.crt`` holds the cluster CA (PEM), so Pods' ``kube-api-access-*`` volumes can verify the API
server. A ConfigMap that was changed or deleted is put back; namespaces being deleted are left alone.

The CA comes in through ``RootCASettings`` (the control plane reads it from its pki); a cluster without TLS
has no CA and runs no publisher.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from nanokube.api.errors import AlreadyExists, Conflict, Forbidden, NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client

from .base import Controller

NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


@dataclass
class RootCASettings:
    ca_pem: str  # the cluster CA certificate, PEM


class RootCAPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, client: Client, settings: RootCASettings) -> None:
        super().__init__(client)
        self.ca_pem = settings.ca_pem
        namespaces = client.registry.get("", "v1", "namespaces")
        configmaps = client.registry.get("", "v1", "configmaps")
        assert namespaces is not None and configmaps is not None
        self.configmaps_res = configmaps
        self.namespaces = self.informer(Informer(client, namespaces))
        self.configmaps = self.informer(Informer(client, configmaps, field_selector=f"metadata.name={NAME}"))
        self.namespaces.add_handler(lambda kind, obj, old: self.queue.add(obj["metadata"]["name"]))
        self.configmaps.add_handler(lambda kind, obj, old: self.queue.add(obj["metadata"]["namespace"]))

    async def sync(self, key: Hashable) -> float | None:
        namespace = str(key)
        ns: JSON | None = self.namespaces.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        current: JSON | None = self.configmaps.get(f"{namespace}/{NAME}")
        try:
            if current is None:
                await self.client.create(self.configmaps_res, namespace, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": NAME, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": {"ca.crt": self.ca_pem}})
            elif (current.get("data") or {}) != {"ca.crt": self.ca_pem}:
                # Only the data is put back (kube keeps the object's other fields).
                wanted = deep_copy(current)
                wanted["data"] = {"ca.crt": self.ca_pem}
                await self.client.update(self.configmaps_res, namespace, wanted)
        except (AlreadyExists, Forbidden, NotFound):
            pass  # made meanwhile, or the namespace is going away
        except Conflict:
            return 1.0
        return None
