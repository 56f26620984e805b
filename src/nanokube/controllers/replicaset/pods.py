"""Pods and owners as kube's controller helpers see them: readiness, availability, controller references,
an index of an informer's objects by owner, and ``claim`` (``ControllerRefManager``): adopt orphans that match a
selector, release owned objects that no longer match.

Shared by the ReplicaSet controller (claiming pods) and the Deployment controller (claiming ReplicaSets).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from nanokube.api.errors import Invalid, NotFound
from nanokube.api.labels import Selector
from nanokube.api.registry import Resource
from nanokube.client.informer import object_key
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import parse_rfc3339


def pod_ready_condition(pod: JSON) -> JSON | None:
    """The pod's Ready condition (shared, read-only)."""
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: JSON) -> bool:
    cond = pod_ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: JSON, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least ``min_ready_seconds`` (``podutil.IsPodAvailable``)."""
    cond = pod_ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return False
    if not min_ready_seconds:
        return True
    since = cond.get("lastTransitionTime")
    if not since:
        return False
    return parse_rfc3339(since).timestamp() + min_ready_seconds < now.timestamp()


def is_pod_terminal(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_active(pod: JSON) -> bool:
    return not is_pod_terminal(pod) and not pod["metadata"].get("deletionTimestamp")


def controller_ref(obj: JSON) -> JSON | None:
    """The owner reference with ``controller: true`` (shared, read-only)."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: JSON, api_version: str, kind: str) -> JSON:
    """``metav1.NewControllerRef``: what a controller stamps on what it creates or adopts."""
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


class OwnerIndex:
    """The objects of one informer by namespace, by controller uid, and the orphans by namespace.

    Feed it every informer event (register it before handlers that read it)."""

    def __init__(self) -> None:
        self.by_namespace: dict[str, dict[str, JSON]] = {}
        self.owned: dict[str, dict[str, JSON]] = {}
        self.orphans: dict[str, dict[str, JSON]] = {}
        self._owner_of: dict[str, str] = {}  # key -> controller uid ("" for orphans)

    def on_event(self, kind: str, obj: JSON, old: JSON | None) -> None:
        key = object_key(obj)
        namespace = obj["metadata"].get("namespace", "")
        previous = self._owner_of.pop(key, None)
        if previous is not None:
            bucket = self.owned.get(previous) if previous else self.orphans.get(namespace)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    (self.owned if previous else self.orphans).pop(previous or namespace, None)
        if kind == "DELETED":
            self.by_namespace.get(namespace, {}).pop(key, None)
            return
        self.by_namespace.setdefault(namespace, {})[key] = obj
        ref = controller_ref(obj)
        uid = (ref or {}).get("uid", "")
        self._owner_of[key] = uid
        (self.owned.setdefault(uid, {}) if uid else self.orphans.setdefault(namespace, {}))[key] = obj

    def in_namespace(self, namespace: str) -> list[JSON]:
        return list(self.by_namespace.get(namespace, {}).values())

    def owned_by(self, uid: str) -> list[JSON]:
        return list(self.owned.get(uid, {}).values())

    def candidates(self, owner: JSON) -> list[JSON]:
        """What ``owner`` may claim: its own objects and the orphans of its namespace."""
        meta = owner["metadata"]
        return self.owned_by(meta["uid"]) + list(self.orphans.get(meta.get("namespace", ""), {}).values())


async def claim(client: Client, resource: Resource, owner: JSON, ref: JSON, selector: Selector,
                candidates: Iterable[JSON], can_adopt: Callable[[], Awaitable[None]]) -> list[JSON]:
    """``ControllerRefManager.Claim*``: the candidates ``owner`` controls after adopting and releasing."""
    claimed: list[JSON] = []
    owner_meta = owner["metadata"]
    owner_deleting = bool(owner_meta.get("deletionTimestamp"))
    checked = False
    for obj in candidates:
        meta = obj["metadata"]
        matches = selector.matches(meta.get("labels") or {})
        current = controller_ref(obj)
        if current is not None:
            if current.get("uid") != owner_meta["uid"]:
                continue
            if matches:
                claimed.append(obj)
            elif not owner_deleting:
                await _patch_refs(client, resource, obj, [{"$patch": "delete", "uid": owner_meta["uid"]}])
            continue
        if owner_deleting or not matches or meta.get("deletionTimestamp"):
            continue
        if meta.get("namespace") != owner_meta.get("namespace"):
            continue
        if not checked:
            await can_adopt()
            checked = True
        adopted = await _patch_refs(client, resource, obj, [ref])
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _patch_refs(client: Client, resource: Resource, obj: JSON, refs: list[JSON]) -> JSON | None:
    meta = obj["metadata"]
    body = {"metadata": {"ownerReferences": refs, "uid": meta["uid"]}}
    try:
        return await client.patch(resource, meta.get("namespace", ""), meta["name"], body, patch_type="strategic")
    except (NotFound, Invalid):
        return None  # gone, or changed under us: the next sync looks again
