"""Which Pods and revisions a StatefulSet controls: an index by owner, and adoption and release
(``ControllerRefManager.ClaimPods`` with the StatefulSet's extra rule that a Pod must be named as its member).

A Pod is the set's when its controller reference names the set. An orphan whose labels the selector matches and
whose name is ``<set>-<ordinal>`` is adopted (after checking afresh that the set still exists and is not being
deleted); an owned Pod that stops matching is released. Orphaned revisions matching the selector are adopted too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nanokube.api.errors import Conflict, Invalid, NotFound
from nanokube.api.labels import Selector
from nanokube.api.registry import Resource
from nanokube.client.informer import object_key
from nanokube.client.interface import JSON, Client

from ..history import History
from .history import SET_KIND
from .identity import controller_ref, is_member, owner_reference


class OwnerIndex:
    """Objects of one informer by controller uid, and the orphans by namespace (feed it every event)."""

    def __init__(self) -> None:
        self.owned: dict[str, dict[str, JSON]] = {}
        self.orphans: dict[str, dict[str, JSON]] = {}
        self._owner_of: dict[str, tuple[str, str]] = {}  # key -> ("owned", uid) | ("orphan", namespace)

    def on_event(self, kind: str, obj: JSON, old: JSON | None) -> None:
        key = object_key(obj)
        previous = self._owner_of.pop(key, None)
        if previous is not None:
            table = self.owned if previous[0] == "owned" else self.orphans
            bucket = table.get(previous[1], {})
            bucket.pop(key, None)
            if not bucket:
                table.pop(previous[1], None)
        if kind == "DELETED":
            return
        ref = controller_ref(obj)
        place = ("owned", str(ref.get("uid", ""))) if ref else ("orphan", obj["metadata"].get("namespace", ""))
        (self.owned if place[0] == "owned" else self.orphans).setdefault(place[1], {})[key] = obj
        self._owner_of[key] = place

    def owned_by(self, uid: str) -> list[JSON]:
        return list(self.owned.get(uid, {}).values())

    def orphans_in(self, namespace: str) -> list[JSON]:
        return list(self.orphans.get(namespace, {}).values())


CanAdopt = Callable[[], Awaitable[None]]


async def claim_pods(client: Client, pods: Resource, sts: JSON, selector: Selector, index: OwnerIndex,
                     can_adopt: CanAdopt) -> list[JSON]:
    """The set's Pods after adopting matching orphans and releasing owned Pods that stopped matching."""
    meta = sts["metadata"]
    deleting = bool(meta.get("deletionTimestamp"))
    claimed: list[JSON] = []
    checked = False
    for pod in index.owned_by(meta["uid"]):
        if selector.matches(pod["metadata"].get("labels") or {}) and is_member(sts, pod):
            claimed.append(pod)
        elif not deleting:
            await _patch_refs(client, pods, pod, [{"$patch": "delete", "uid": meta["uid"]}])
    if deleting:
        return claimed
    for pod in index.orphans_in(meta.get("namespace", "")):
        if (pod["metadata"].get("deletionTimestamp") or not is_member(sts, pod)
                or not selector.matches(pod["metadata"].get("labels") or {})):
            continue
        if not checked:
            await can_adopt()
            checked = True
        adopted = await _patch_refs(client, pods, pod, [owner_reference(sts)])
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def adopt_orphan_revisions(history: History, sts: JSON, selector: Selector, can_adopt: CanAdopt) -> None:
    orphans = [r for r in history.list(sts, selector) if controller_ref(r) is None]
    if not orphans:
        return
    await can_adopt()
    for revision in orphans:
        try:
            await history.adopt(sts, SET_KIND, revision)
        except (NotFound, Invalid, Conflict):
            continue  # gone or taken meanwhile: the next sync sees it


async def _patch_refs(client: Client, resource: Resource, obj: JSON, refs: list[JSON]) -> JSON | None:
    meta = obj["metadata"]
    body = {"metadata": {"ownerReferences": refs, "uid": meta["uid"]}}
    try:
        return await client.patch(resource, meta.get("namespace", ""), meta["name"], body, patch_type="strategic")
    except (NotFound, Invalid):
        return None  # gone, or changed under us: the next sync looks again
