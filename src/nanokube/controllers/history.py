"""ControllerRevision history for any controller that versions a Pod template (kube's ``pkg/controller/history``).

The StatefulSet and DaemonSet controllers both keep one ControllerRevision per distinct template, so what they
share lives here and knows about neither kind: a parent is any object with a uid, described by
``(apiVersion, kind)``, and a revision's ``data`` is whatever its controller stores (both store kube's strategic
merge patch that puts the template back, ``template_patch``). Revisions are ordered by their ``revision`` number.

Two hashes, because kube has two and their values show up in names and labels: ``hash_revision`` is
``history.HashControllerRevision`` (FNV-1 over the data's JSON, the collision count appended as decimal text;
StatefulSets, label ``controller.kubernetes.io/hash``), ``compute_hash`` is ``controller.ComputeHash`` (FNV-1a
over the template's JSON, the collision count appended as a little-endian uint32; DaemonSets). Both are spelled
with kube's vowel-free alphabet. Go hashes its own structs, which no other program reproduces; these hash
canonical JSON, so names are stable across restarts of nanokube but not equal to a real cluster's.

``History`` reads from an informer cache (register ``History.on_event`` as its handler) and writes through the
client (kube's ``history.Interface``); the pure helpers build, compare, order and truncate revisions. What each
controller does with them (which revision is current, how pods are labelled, when history is cut) stays in its
own package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from nanokube.api.errors import AlreadyExists, Conflict, Invalid, NotFound
from nanokube.api.labels import Selector
from nanokube.api.objects import deep_copy, json_equal
from nanokube.client.informer import object_key
from nanokube.client.interface import JSON, Client

HASH_LABEL = "controller.kubernetes.io/hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels, no 0/1/3: no words, no look-alikes
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193
_MAX_PREFIX = 223  # keeps names within 253 characters


def fnv32(data: bytes) -> int:
    """FNV-1 (multiply, then xor), 32 bits: Go's ``hash/fnv.New32``."""
    value = _FNV_OFFSET
    for byte in data:
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def fnv32a(data: bytes, value: int = _FNV_OFFSET) -> int:
    """FNV-1a (xor, then multiply), 32 bits: Go's ``hash/fnv.New32a``; pass ``value`` to continue a sum."""
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte mapped into an alphabet without vowels or look-alike digits."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in text.encode())


def canonical_json(data: Any) -> bytes:
    """Compact JSON with sorted keys, as Go marshals a map."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hash_revision(data: Any, collision_count: int | None = None) -> str:
    """``history.HashControllerRevision``: the StatefulSet revision hash of ``data``."""
    raw = canonical_json(data)
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv32(raw)))


def compute_hash(template: JSON, collision_count: int | None) -> str:
    """``controller.ComputeHash``: the DaemonSet revision hash of a pod template."""
    value = fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:
        value = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little"), value)
    return safe_encode(str(value))


def revision_name(prefix: str, hash_: str) -> str:
    """``history.ControllerRevisionName``: ``<prefix>-<hash>``, the prefix cut to keep within 253 characters."""
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def template_patch(template: JSON) -> JSON:
    """What a revision stores: the strategic merge patch that replaces ``spec.template`` with ``template``."""
    body = deep_copy(template)
    body["$patch"] = "replace"
    return {"spec": {"template": body}}


def restored_template(revision: JSON) -> JSON:
    """The template a ``template_patch`` revision puts back."""
    template: JSON = deep_copy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def new_revision(parent: JSON, kind: tuple[str, str], name: str, labels: dict[str, str], data: Any,
                 number: int) -> JSON:
    """ControllerRevision ``name`` of ``parent`` (controller reference to ``kind = (apiVersion, kind)``) with
    ``labels``, the parent's annotations, and ``data`` as revision ``number``."""
    meta = parent["metadata"]
    revision: JSON = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                      "metadata": {"name": name, "namespace": meta.get("namespace", ""), "labels": dict(labels),
                                   "ownerReferences": [controller_ref(parent, kind)]},
                      "data": deep_copy(data), "revision": number}
    if meta.get("annotations"):
        revision["metadata"]["annotations"] = dict(meta["annotations"])
    return revision


def controller_ref(parent: JSON, kind: tuple[str, str]) -> JSON:
    """A controller owner reference to ``parent``, which blocks its deletion until the revision is gone."""
    return {"apiVersion": kind[0], "kind": kind[1], "name": parent["metadata"]["name"],
            "uid": parent["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _controller_uid(obj: JSON) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return None


def number_of(revision: JSON) -> int:
    """The revision's ``revision`` number (0 when unset)."""
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
    """The revisions holding the same data as ``needle``, in the given order."""
    return [r for r in revisions if equal_revision(r, needle)]


def next_revision(sorted_revisions: list[JSON]) -> int:
    """One more than the newest revision's number; 1 for an empty history."""
    return number_of(sorted_revisions[-1]) + 1 if sorted_revisions else 1


def oldest_unused(sorted_revisions: Iterable[JSON], in_use: Callable[[JSON], bool], count: int) -> list[JSON]:
    """The first ``count`` revisions (oldest first, as sorted) that are not ``in_use``: what truncation deletes."""
    out: list[JSON] = []
    for revision in sorted_revisions:
        if len(out) >= count:
            break
        if not in_use(revision):
            out.append(revision)
    return out


def surplus(sorted_revisions: list[JSON], live: set[str], limit: int) -> list[JSON]:
    """The oldest revisions not named in ``live`` beyond ``limit`` kept unused ones (StatefulSet's
    ``truncateHistory``; a negative limit keeps everything)."""
    unused = sum(1 for r in sorted_revisions if r["metadata"]["name"] not in live)
    if limit < 0 or unused <= limit:
        return []
    return oldest_unused(sorted_revisions, lambda r: r["metadata"]["name"] in live, unused - limit)


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
