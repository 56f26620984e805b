"""The client contract controllers, the scheduler and node agents program against.

Two implementations keep it: ``local.LocalClient`` calls the API server's object storage in the same process
(no HTTP, no serialization), and an HTTP client does the same over the wire for agents on other machines.
Both raise the ``nanokube.api.errors`` tree, so ``except NotFound`` means the same everywhere.

Resources are addressed by ``nanokube.api.registry.Resource``; objects are JSON-shaped dicts. Objects returned
are shared and read-only: copy (``api.objects.deep_copy``) before changing them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from nanokube.api.registry import Registry, Resource

JSON = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: JSON
    revision: int


@dataclass(frozen=True)
class ObjectList:
    items: list[JSON]
    resource_version: str


class Client(Protocol):
    registry: Registry

    async def get(self, resource: Resource, namespace: str, name: str) -> JSON: ...

    async def list(self, resource: Resource, namespace: str = "", *, label_selector: str = "",
                   field_selector: str = "") -> ObjectList: ...

    def watch(self, resource: Resource, namespace: str = "", *, resource_version: str = "",
              label_selector: str = "", field_selector: str = "") -> AsyncIterator[WatchEvent]:
        """Changes after ``resource_version`` (all current objects as ADDED first when it is empty).

        Raises ``nanokube.api.errors.Expired`` when the version is too old: relist and watch again."""

    async def create(self, resource: Resource, namespace: str, obj: JSON) -> JSON: ...

    async def update(self, resource: Resource, namespace: str, obj: JSON, *, subresource: str = "") -> JSON:
        """Replace; ``metadata.resourceVersion`` in ``obj`` is a precondition (Conflict when stale)."""

    async def patch(self, resource: Resource, namespace: str, name: str, patch: Any, *,
                    patch_type: PatchType = "merge", subresource: str = "") -> JSON: ...

    async def delete(self, resource: Resource, namespace: str, name: str, *, propagation: str | None = None,
                     grace_period_seconds: int | None = None, uid: str | None = None,
                     resource_version: str | None = None) -> JSON: ...

    async def bind(self, namespace: str, name: str, node: str) -> None:
        """POST pods/NAME/binding: assign the pod to ``node`` (Conflict if it already has one)."""

    async def evict(self, namespace: str, name: str, *, grace_period_seconds: int | None = None) -> None:
        """POST pods/NAME/eviction: delete the pod unless a disruption budget forbids it (TooManyRequests)."""

    async def request_token(self, namespace: str, account: str, request: JSON) -> JSON:
        """POST serviceaccounts/ACCOUNT/token: the answered TokenRequest (``status.token``)."""
