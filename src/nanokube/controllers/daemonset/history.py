"""DaemonSet revision history: one ControllerRevision ``<ds>-<hash>`` per distinct pod template.

Each revision stores what ``kubectl rollout undo`` applies to go back to it, a strategic merge patch that
replaces ``spec.template`` (``{"spec": {"template": {..., "$patch": "replace"}}}``), and a ``revision`` number;
the current template's revision always carries the highest number, so rolling back to an old template renumbers
that revision instead of creating a new one. Revisions are labelled with the template's labels (so
``kubectl rollout history`` finds them by the DaemonSet's selector) plus ``controller-revision-hash``, the value
each pod carries to say which revision it runs. Old revisions beyond ``revisionHistoryLimit`` that no pod uses
any more are deleted, oldest first.

The revision's shape, hash (``compute_hash``, kube's ``controller.ComputeHash`` over the template and
``status.collisionCount``), ordering and truncation come from ``controllers/history.py``, shared with the
StatefulSet controller; what is the DaemonSet's own stays here: the hash label pods carry, renumbering on
rollback, merging duplicate current revisions, and bumping the collision count on a name clash.
"""

from __future__ import annotations

import logging

from nanokube.api.errors import AlreadyExists, ApiError, NotFound
from nanokube.api.objects import deep_copy, json_equal
from nanokube.api.registry import Resource
from nanokube.client.interface import JSON, Client

from ..history import compute_hash, new_revision, number_of, oldest_unused, template_patch

log = logging.getLogger(__name__)
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
KIND = ("apps/v1", "DaemonSet")


def revision_data(ds: JSON) -> JSON:
    """The patch that restores the DaemonSet's current template (``getPatch``)."""
    return template_patch(((ds.get("spec") or {}).get("template")) or {})


def revision_matches(ds: JSON, revision: JSON) -> bool:
    """Whether ``revision`` records the DaemonSet's current template (``Match``)."""
    return json_equal(revision.get("data"), revision_data(ds))


def template_generation(ds: JSON) -> int | None:
    """The template generation for the ``pod-template-generation`` label: kube's deprecated annotation when
    the API server set it, else ``metadata.generation`` (a pod counts as updated by its hash either way)."""
    meta = ds.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    if raw is not None:
        try:
            return int(raw)
        except ValueError:
            return None
    generation = meta.get("generation")
    return int(generation) if generation is not None else None


class History:
    """Reads and writes one namespace's ControllerRevisions for DaemonSets."""

    def __init__(self, client: Client, revisions: Resource, daemonsets: Resource, pods: Resource) -> None:
        self.client = client
        self.revisions = revisions
        self.daemonsets = daemonsets
        self.pods = pods

    async def construct(self, ds: JSON, controlled: list[JSON], pods: list[JSON]) -> tuple[JSON, list[JSON]]:
        """The current revision (created or renumbered as needed) and the old ones (``constructHistory``).

        ``controlled`` are the revisions the DaemonSet owns; ``pods`` its pods, relabelled if duplicate current
        revisions are merged."""
        current: list[JSON] = []
        old: list[JSON] = []
        for revision in controlled:
            if HASH_LABEL not in (revision["metadata"].get("labels") or {}):
                revision = await self._label_with_name(revision)
            (current if revision_matches(ds, revision) else old).append(revision)
        wanted = max((number_of(r) for r in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, wanted), old
        cur = await self._dedup(ds, current, pods)
        if number_of(cur) < wanted:
            body = deep_copy(cur)
            body["revision"] = wanted
            cur = await self.client.update(self.revisions, cur["metadata"].get("namespace", ""), body)
        return cur, old

    async def cleanup(self, ds: JSON, old: list[JSON], pods: list[JSON]) -> None:
        """Delete the oldest revisions beyond ``revisionHistoryLimit`` that no pod (even a finished one) runs."""
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        extra = len(old) - int(10 if limit is None else limit)
        live = {_hash_of(p) for p in pods}
        for revision in oldest_unused(sorted(old, key=number_of), lambda r: _hash_of(r) in live, extra):
            meta = revision["metadata"]
            try:
                await self.client.delete(self.revisions, meta.get("namespace", ""), meta["name"])
            except NotFound:
                pass

    async def _label_with_name(self, revision: JSON) -> JSON:
        """Old revisions without the hash label get their name as its value (no recomputing, no collisions)."""
        body = deep_copy(revision)
        body["metadata"].setdefault("labels", {})[HASH_LABEL] = body["metadata"]["name"]
        return await self.client.update(self.revisions, body["metadata"].get("namespace", ""), body)

    async def _dedup(self, ds: JSON, current: list[JSON], pods: list[JSON]) -> JSON:
        """Keep the highest-numbered of several revisions matching the template; move pods onto it."""
        keep = current[0]
        for revision in current:
            if number_of(revision) >= number_of(keep):
                keep = revision
        if len(current) == 1:
            return keep
        keep_hash = (keep["metadata"].get("labels") or {}).get(HASH_LABEL)
        namespace = ds["metadata"].get("namespace", "")
        for pod in pods:
            if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) != keep_hash:
                await self.client.patch(self.pods, namespace, pod["metadata"]["name"],
                                        {"metadata": {"labels": {HASH_LABEL: keep_hash}}})
        for revision in current:
            if revision is not keep:
                try:
                    await self.client.delete(self.revisions, namespace, revision["metadata"]["name"])
                except NotFound:
                    pass
        return keep

    async def _snapshot(self, ds: JSON, number: int) -> JSON:
        """Create the revision of the current template; on a name clash with a different template, bump
        ``status.collisionCount`` and fail, so the next sync hashes differently."""
        meta = ds["metadata"]
        namespace = meta.get("namespace", "")
        collisions = (ds.get("status") or {}).get("collisionCount")
        template = (ds.get("spec") or {}).get("template") or {}
        hash_ = compute_hash(template, collisions)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: hash_}
        body = new_revision(ds, KIND, f"{meta['name']}-{hash_}", labels, revision_data(ds), number)
        try:
            return await self.client.create(self.revisions, namespace, body)
        except AlreadyExists as err:
            existing = await self.client.get(self.revisions, namespace, body["metadata"]["name"])
            if revision_matches(ds, existing):
                return existing
            await self._bump_collisions(ds, collisions)
            raise err

    async def _bump_collisions(self, ds: JSON, seen: int | None) -> None:
        meta = ds["metadata"]
        fresh = deep_copy(await self.client.get(self.daemonsets, meta.get("namespace", ""), meta["name"]))
        status = fresh.setdefault("status", {})
        if status.get("collisionCount") != seen:
            raise ApiError(f"found a stale collision count ({seen}, expected {status.get('collisionCount')}) of "
                           f"DaemonSet {meta['name']!r} while processing; will retry until it is updated")
        status["collisionCount"] = int(seen or 0) + 1
        await self.client.update(self.daemonsets, meta.get("namespace", ""), fresh, subresource="status")
        log.info("hash collision for DaemonSet %s/%s: collisionCount is now %d", meta.get("namespace"),
                 meta["name"], status["collisionCount"])


def _hash_of(obj: JSON) -> str | None:
    """The ``controller-revision-hash`` label of a pod or revision."""
    value = (obj["metadata"].get("labels") or {}).get(HASH_LABEL)
    return None if value is None else str(value)
