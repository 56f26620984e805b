"""ControllerRevision history for any controller that versions a template (``pkg/controller/history``).

StatefulSets use it here; the DaemonSet controller keeps its history the same way, so nothing in this module
knows about either kind: a parent is any object with a uid, described by ``(apiVersion, kind)``, and a revision's
``data`` is whatever the parent's controller wants to store (kube stores a strategic merge patch that restores the
template). Names are ``<parent>-<hash>``, the hash an FNV-1 32-bit sum of the data's JSON (and of the collision
count, when a different revision already took the name), spelled with kube's "safe" alphabet, and also kept in
the ``controller.kubernetes.io/hash`` label. Revisions are ordered by their ``revision`` number.

``History`` reads from an informer cache (register ``History.on_event`` as its handler) and writes through the
client; the pure helpers build, compare and order revisions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from nanokube.api.errors import AlreadyExists, Conflict, Invalid, NotFound
from nanokube.api.labels import Selector
from nanokube.api.objects import deep_copy, json_equal
from nanokube.client.informer import object_key
from nanokube.client.interface import JSON, Client

HASH_LABEL = "controller.kubernetes.io/hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels, no 0/1/3: no words, no look-alikes
_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619
_MAX_PREFIX = 223  # keeps names within 253 characters


def fnv32(data: bytes) -> int:
    """FNV-1 (multiply, then xor), 32 bits: Go's ``hash/fnv.New32``."""
    value = _FNV_OFFSET
    for byte in data:
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte mapped into an alphabet without vowels or look-alike digits."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in text.encode())


def canonical_json(data: Any) -> bytes:
    """Compact JSON with sorted keys, as Go marshals a map."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hash_revision(data: Any, collision_count: int | None = None) -> str:
    raw = canonical_json(data)
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv32(raw)))


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def new_revision(parent: JSON, kind: tuple[str, str], template_labels: dict[str, str] | None, data: Any,
                 number: int, collision_count: int | None) -> JSON:
    """A ControllerRevision of ``parent`` (controller reference to ``kind = (apiVersion, kind)``), labelled as
    the template and with the hash label, holding ``data`` as revision ``number``."""
    meta = parent["metadata"]
    hash_ = hash_revision(data, collision_count)
    labels = {**(template_labels or {}), HASH_LABEL: hash_}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": revision_name(meta["name"], hash_), "namespace": meta.get("namespace", ""),
                         "labels": labels, "ownerReferences": [controller_ref(parent, kind)]},
            "data": deep_copy(data), "revision": number}


def controller_ref(parent: JSON, kind: tuple[str, str]) -> JSON:
    return {"apiVersion": kind[0], "kind": kind[1], "name": parent["metadata"]["name"],
            "uid": parent["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _controller_uid(obj: JSON) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return None


def number_of(revision: JSON) -> int:
    return int(revision.get("revision") or 0)


def sort_revisions(revisions: Iterable[JSON]) -> list[JSON]:
    """By revision number; ties by creation time, then name."""
    return sorted(revisions, key=lambda r: (number_of(r), r["metadata"].get("creationTimestamp", ""),
                                            r["metadata"].get("name", "")))


def equal_revision(a: JSON | None, b: JSON | None) -> bool:
    """Both absent, or both holding the same data."""
    if a is None or b is None:
        return a is b
    return json_equal(a.get("data"), b.get("data"))


def find_equal_revisions(revisions: Iterable[JSON], needle: JSON) -> list[JSON]:
    return [r for r in revisions if equal_revision(r, needle)]


def next_revision(sorted_revisions: list[JSON]) -> int:
    return number_of(sorted_revisions[-1]) + 1 if sorted_revisions else 1


def surplus(sorted_revisions: list[JSON], live: set[str], limit: int) -> list[JSON]:
    """The oldest revisions that are not live and exceed ``limit`` kept ones: what history truncation deletes."""
    history = [r for r in sorted_revisions if r["metadata"]["name"] not in live]
    if limit < 0 or len(history) <= limit:
        return []
    return history[:len(history) - limit]


class History:
    """The revisions of a namespace from an informer's events, and the writes kube's ``history.Interface`` does."""

    def __init__(self, client: Client) -> None:
        resource = client.registry.get("apps", "v1", "controllerrevisions")
        assert resource is not None
        self.client = client
        self.resource = resource
        self._by_namespace: dict[str, dict[str, JSON]] = {}

    def on_event(self, kind: str, obj: JSON, old: JSON | None) -> None:
        bucket = self._by_namespace.setdefault(obj["metadata"].get("namespace", ""), {})
        if kind == "DELETED":
            bucket.pop(object_key(obj), None)
        else:
            bucket[object_key(obj)] = obj

    def list(self, parent: JSON, selector: Selector) -> list[JSON]:
        """Revisions in the parent's namespace matching ``selector`` that it controls or nobody controls."""
        meta = parent["metadata"]
        found = []
        for revision in self._by_namespace.get(meta.get("namespace", ""), {}).values():
            owner = _controller_uid(revision)
            if owner not in (None, meta["uid"]):
                continue
            if selector.matches(revision["metadata"].get("labels") or {}):
                found.append(revision)
        return found

    async def create(self, parent: JSON, revision: JSON, collision_count: int) -> tuple[JSON, int]:
        """Create ``revision``; on a name taken by different data, count the collision and rename. Returns the
        stored revision (an equal one already there counts) and the collision count."""
        namespace = parent["metadata"].get("namespace", "")
        body = deep_copy(revision)
        while True:
            hash_ = hash_revision(revision.get("data"), collision_count)
            body["metadata"]["name"] = revision_name(parent["metadata"]["name"], hash_)
            body["metadata"].setdefault("labels", {})[HASH_LABEL] = hash_
            try:
                return await self.client.create(self.resource, namespace, body), collision_count
            except AlreadyExists:
                existing = await self.client.get(self.resource, namespace, body["metadata"]["name"])
                if json_equal(existing.get("data"), body.get("data")):
                    return existing, collision_count
                collision_count += 1

    async def update_number(self, revision: JSON, number: int) -> JSON:
        """Give ``revision`` a new revision number (a rollback to it), retrying on a stale read."""
        meta = revision["metadata"]
        body = deep_copy(revision)
        for attempt in range(5):
            if number_of(body) == number:
                return body
            body["revision"] = number
            try:
                return await self.client.update(self.resource, meta.get("namespace", ""), body)
            except Conflict:
                if attempt == 4:
                    raise
                body = deep_copy(await self.client.get(self.resource, meta.get("namespace", ""), meta["name"]))
        return body

    async def delete(self, revision: JSON) -> None:
        meta = revision["metadata"]
        try:
            await self.client.delete(self.resource, meta.get("namespace", ""), meta["name"], uid=meta.get("uid"))
        except NotFound:
            pass

    async def adopt(self, parent: JSON, kind: tuple[str, str], revision: JSON) -> JSON:
        """Make ``parent`` the controller of an orphaned revision (a strategic merge patch with a uid guard)."""
        if _controller_uid(revision) is not None:
            raise Conflict(f"attempt to adopt revision owned by {_controller_uid(revision)}")
        body = {"metadata": {"ownerReferences": [controller_ref(parent, kind)],
                             "uid": revision["metadata"]["uid"]}}
        meta = revision["metadata"]
        return await self.client.patch(self.resource, meta.get("namespace", ""), meta["name"], body,
                                       patch_type="strategic")

    async def release(self, parent: JSON, revision: JSON) -> JSON | None:
        """Drop ``parent``'s reference from a revision; None when it is gone or no longer ours."""
        meta = revision["metadata"]
        body = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": parent["metadata"]["uid"]}],
                             "uid": meta["uid"]}}
        try:
            return await self.client.patch(self.resource, meta.get("namespace", ""), meta["name"], body,
                                           patch_type="strategic")
        except (NotFound, Invalid):
            return None
