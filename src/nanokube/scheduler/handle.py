"""What plugins may reach besides the snapshot: cached API objects, the client and the event recorder.

kube's framework ``Handle`` hands plugins listers, a clientset and an event recorder; here ``caches`` maps a
resource plural (``persistentvolumeclaims``, ``namespaces``...) to an informer's cache (key ``ns/name`` or
``name`` -> object), so a plugin reads the world without a request, and tests hand in plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nanokube.client.events import EventRecorder
from nanokube.client.interface import Client

JSON = dict[str, Any]


@dataclass
class Handle:
    client: Client | None = None
    caches: dict[str, Mapping[str, JSON]] = field(default_factory=dict)
    recorder: EventRecorder | None = None
    scheduler_name: str = "default-scheduler"

    def get(self, plural: str, namespace: str, name: str) -> JSON | None:
        cache = self.caches.get(plural)
        if cache is None:
            return None
        return cache.get(f"{namespace}/{name}" if namespace else name)

    def items(self, plural: str, namespace: str | None = None) -> Iterable[JSON]:
        cache = self.caches.get(plural) or {}
        if namespace is None:
            return list(cache.values())
        return [o for o in cache.values() if (o.get("metadata") or {}).get("namespace") == namespace]

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        ns = self.get("namespaces", "", namespace)
        return None if ns is None else (ns.get("metadata") or {}).get("labels") or {}
