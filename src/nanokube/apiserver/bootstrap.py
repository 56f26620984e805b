"""Objects every cluster starts with: the four system namespaces and the ``kubernetes`` Service.

Seeding is idempotent: what exists is left alone, so a restart changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nanokube.api.errors import AlreadyExists

from .storage import ObjectStorage

if TYPE_CHECKING:
    from .services import ServiceAllocator

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def seed(storage: ObjectStorage, services: ServiceAllocator) -> None:
    registry = storage.registry
    namespaces = registry.get("", "v1", "namespaces")
    svc = registry.get("", "v1", "services")
    assert namespaces is not None and svc is not None
    for name in SYSTEM_NAMESPACES:
        if await storage.store.get(namespaces.key("", name)) is None:
            try:
                await storage.create(namespaces, "", {"metadata": {"name": name}})
            except AlreadyExists:
                pass
    if await storage.store.get(svc.key("default", "kubernetes")) is None:
        body = {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": services.kubernetes_ip, "type": "ClusterIP", "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        }
        try:
            await storage.create(svc, "default", body)
        except AlreadyExists:
            pass
