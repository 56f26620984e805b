"""Priority admission: a Pod's ``priorityClassName`` becomes ``spec.priority`` (and its preemption policy),
as kube-apiserver's Priority plugin does on Pod creation.

A Pod naming no class gets the cluster's ``globalDefault`` PriorityClass if there is one. A Pod naming a class
that does not exist is refused (403). The two system classes need no object.
"""

from __future__ import annotations

from nanokube.api.errors import Forbidden
from nanokube.api.registry import Resource

from .storage import JSON, ObjectStorage

SYSTEM_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


class PriorityAdmission:
    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage

    async def admit(self, resource: Resource, obj: JSON, live: JSON | None) -> None:
        if live is not None or resource.group != "" or resource.plural != "pods":
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        name = spec.get("priorityClassName")
        if name in SYSTEM_CLASSES:
            spec["priority"] = SYSTEM_CLASSES[name]
            return
        found = await self._class(name) if name else await self._global_default()
        if found is None:
            if name:
                pod = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
                raise Forbidden(f'pods "{pod}" is forbidden: no PriorityClass with name {name} was found',
                                details={"name": pod, "kind": "pods"})
            return
        spec["priorityClassName"] = found["metadata"]["name"]
        spec["priority"] = int(found.get("value", 0))
        if found.get("preemptionPolicy"):
            spec["preemptionPolicy"] = found["preemptionPolicy"]

    async def _class(self, name: str) -> JSON | None:
        kv = await self.storage.store.get(f"/scheduling.k8s.io/priorityclasses/{name}")
        return kv.value if kv is not None else None

    async def _global_default(self) -> JSON | None:
        page = await self.storage.store.list("/scheduling.k8s.io/priorityclasses/")
        defaults = [kv.value for kv in page.items if kv.value.get("globalDefault")]
        return min(defaults, key=lambda c: int(c.get("value", 0))) if defaults else None
