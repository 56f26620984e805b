"""One sync of one Deployment: finding or creating its new ReplicaSet, scaling, history cleanup, status writes.

A ``Rollout`` holds the Deployment being synced (a private working copy whose annotations and status change in
place, then ``write``), the ReplicaSets it controls, and their pods. The strategies (``rolling``, ``recreate``)
and the controller call its methods in kube's order (``sync.go``). Writes carry the resourceVersion they were
based on, so a stale cache ends in a Conflict and a retry, never in a lost update.

The Deployment's revision annotation goes through the main resource (a merge patch of
``metadata.annotations``): kube lets a Deployment's status write change annotations, nanokube's status writes
keep metadata as it was, and a patch works under both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nanokube.api.errors import AlreadyExists, ApiError, NotFound
from nanokube.api.objects import deep_copy, json_equal
from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import now as utcnow

from ..replicaset import WrittenStatus, controller_ref, owner_reference
from .progress import (
    FAILED_RS_CREATE,
    FOUND_NEW_RS,
    NEW_RS_CREATED,
    PROGRESSING,
    calculate_status,
    get_condition,
    has_progress_deadline,
    new_condition,
    rollout_status,
    set_condition,
    stuck_requeue,
)
from .util import (
    HASH_LABEL,
    REVISION,
    TemplateCache,
    active,
    annotations_of,
    by_revision,
    by_size_newer,
    by_size_older,
    compute_hash,
    equal_ignore_hash,
    find_active_or_latest,
    find_new,
    find_old,
    is_rolling_update,
    is_saturated,
    max_revision,
    max_surge,
    new_rs_new_replicas,
    proportion,
    replica_count,
    replicas,
    replicas_annotations_need_update,
    set_annotation,
    set_new_rs_annotations,
    set_replicas_annotations,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Env:
    client: Client
    deployments: Resource
    replicasets: Resource
    recorder: EventRecorder
    templates: TemplateCache
    written: WrittenStatus


class Rollout:
    def __init__(self, env: Env, d: JSON, rses: list[JSON], pods_by_rs: dict[str, list[JSON]]) -> None:
        self.env = env
        self.base = d  # the Deployment as last read or written
        self.d = deep_copy(d)
        self.d.setdefault("status", {})
        self.rses = rses
        self.pods_by_rs = pods_by_rs
        self.requeue: float | None = None  # seconds until the progress deadline wants a look

    @property
    def namespace(self) -> str:
        return str(self.d["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.d["metadata"]["name"])

    async def event(self, type_: str, reason: str, message: str) -> None:
        await self.env.recorder.event(self.base, type_, reason, message)

    # -- writing the Deployment --------------------------------------------------------------------------
    async def write(self) -> None:
        """Persist what changed in the working copy: annotations, then status."""
        client, res = self.env.client, self.env.deployments
        wanted, had = annotations_of(self.d), annotations_of(self.base)
        if wanted != had:
            changes: dict[str, str | None] = {k: v for k, v in wanted.items() if had.get(k) != v}
            changes.update({k: None for k in had if k not in wanted})
            patch = {"metadata": {"resourceVersion": self.base["metadata"]["resourceVersion"],
                                  "annotations": changes}}
            self.base = await client.patch(res, self.namespace, self.name, patch)
        key = f"{self.namespace}/{self.name}"
        if (not json_equal(self.d.get("status") or {}, self.base.get("status") or {})
                or not self.env.written.consistent(key, self.base.get("status"))):
            body = deep_copy(self.base)
            body["status"] = deep_copy(self.d["status"])
            self.base = await client.update(res, self.namespace, body, subresource="status")
            self.env.written.remember(key, self.base.get("status"))
        self.d["metadata"]["resourceVersion"] = self.base["metadata"]["resourceVersion"]

    # -- the new ReplicaSet ------------------------------------------------------------------------------
    async def new_and_old(self, create: bool) -> tuple[JSON | None, list[JSON]]:
        """``getAllReplicaSetsAndSyncRevision``: the new ReplicaSet (made when ``create`` and missing, its
        revision raised above the old ones) and all the old ones."""
        old = find_old(self.d, self.rses, self.env.templates)
        return await self._new_rs(old, create), old

    async def _new_rs(self, old: list[JSON], create: bool) -> JSON | None:
        existing = find_new(self.d, self.rses, self.env.templates)
        new_revision = max_revision(old) + 1
        if existing is not None:
            return await self._sync_existing(existing, new_revision)
        if not create:
            return None
        return await self._create_new(old, new_revision)

    async def _sync_existing(self, existing: JSON, new_revision: int) -> JSON:
        rs = deep_copy(existing)
        changed = set_new_rs_annotations(self.d, rs, new_revision, exists=True)
        min_ready = self.d["spec"].get("minReadySeconds", 0)
        if changed or rs["spec"].get("minReadySeconds", 0) != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            return await self.env.client.update(self.env.replicasets, self.namespace, rs)
        needs_write = set_annotation(self.d, REVISION, annotations_of(rs).get(REVISION, ""))
        if has_progress_deadline(self.d) and get_condition(self.d["status"], PROGRESSING) is None:
            set_condition(self.d["status"], new_condition(PROGRESSING, "True", FOUND_NEW_RS,
                                                          f'Found new replica set "{rs["metadata"]["name"]}"', utcnow()))
            needs_write = True
        if needs_write:
            await self.write()
        return rs

    def _new_rs_body(self, pod_hash: str) -> JSON:
        spec = self.d["spec"]
        template = deep_copy(spec["template"])
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = deep_copy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{self.name}-{pod_hash}", "namespace": self.namespace, "labels": dict(labels),
                             "ownerReferences": [owner_reference(self.d, "apps/v1", "Deployment")]},
                "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": selector,
                         "template": template}}

    async def _create_new(self, old: list[JSON], new_revision: int) -> JSON:
        client, res = self.env.client, self.env.replicasets
        pod_hash = compute_hash(self.d["spec"]["template"], self.d["status"].get("collisionCount"))
        rs = self._new_rs_body(pod_hash)
        count = new_rs_new_replicas(self.d, [*old, rs], rs)
        rs["spec"]["replicas"] = count
        set_new_rs_annotations(self.d, rs, new_revision, exists=False)
        name = rs["metadata"]["name"]
        try:
            created, fresh = await client.create(res, self.namespace, rs), True
        except AlreadyExists:
            created, fresh = await self._existing_or_collision(name), False
        except ApiError as err:
            await self._creation_failed(name, err)
            raise
        if fresh and count > 0:
            await self.event("Normal", "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {count}")
        needs_write = set_annotation(self.d, REVISION, str(new_revision))
        if fresh and has_progress_deadline(self.d):
            set_condition(self.d["status"], new_condition(PROGRESSING, "True", NEW_RS_CREATED,
                                                          f'Created new replica set "{name}"', utcnow()))
            needs_write = True
        if needs_write:
            await self.write()
        return created

    async def _existing_or_collision(self, name: str) -> JSON:
        """A ReplicaSet of that name exists: ours with this template (a slow cache), or a hash collision —
        then bump ``collisionCount`` so the next try hashes differently, and fail this sync."""
        live = await self.env.client.get(self.env.replicasets, self.namespace, name)
        ref = controller_ref(live)
        if (ref is not None and ref.get("uid") == self.d["metadata"]["uid"]
                and equal_ignore_hash(self.d["spec"]["template"], (live.get("spec") or {}).get("template"))):
            return live
        before = self.d["status"].get("collisionCount") or 0
        self.d["status"]["collisionCount"] = before + 1
        await self.write()
        log.info("hash collision for deployment %s/%s: collisionCount %d -> %d", self.namespace, self.name,
                 before, before + 1)
        raise AlreadyExists(f'replicasets.apps "{name}" already exists')

    async def _creation_failed(self, name: str, err: ApiError) -> None:
        if any(c.get("reason") == "NamespaceTerminating" for c in (err.details or {}).get("causes") or []):
            return
        message = f'Failed to create new replica set "{name}": {err.message}'
        if has_progress_deadline(self.d):
            set_condition(self.d["status"], new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message, utcnow()))
            try:
                await self.write()
            except ApiError:
                pass  # the failure to create is the bigger news
        await self.event("Warning", FAILED_RS_CREATE, message)

    # -- scaling ---------------------------------------------------------------------------------------
    async def scale_rs(self, rs: JSON, size: int, operation: str = "") -> tuple[bool, JSON]:
        """Set a ReplicaSet's size (and its desired/max annotations); an Event when the size changed."""
        old_size = replicas(rs)
        desired, most = replicas(self.d), replicas(self.d) + max_surge(self.d)
        if not operation:
            if old_size == size:
                return False, rs
            operation = "up" if old_size < size else "down"
        if old_size == size and not replicas_annotations_need_update(rs, desired, most):
            return False, rs
        body = deep_copy(rs)
        body["spec"]["replicas"] = size
        set_replicas_annotations(body, desired, most)
        updated = await self.env.client.update(self.env.replicasets, self.namespace, body)
        if old_size == size:
            return False, updated
        await self.event("Normal", "ScalingReplicaSet",
                         f"Scaled {operation} replica set {rs['metadata']['name']} from {old_size} to {size}")
        return True, updated

    async def scale(self, new: JSON | None, old: list[JSON]) -> None:
        """Follow a change of ``spec.replicas``: the one active ReplicaSet takes it all; with several (a
        rollout under way) the change is shared in proportion to their sizes (kube's ``scale``)."""
        target = find_active_or_latest(new, old)
        if target is not None:
            if replicas(target) != replicas(self.d):
                await self.scale_rs(target, replicas(self.d))
            return
        if is_saturated(self.d, new):
            for rs in active(list(old)):
                await self.scale_rs(rs, 0)
            return
        if not is_rolling_update(self.d):
            return
        running = active([*old, new])
        allowed = replicas(self.d) + max_surge(self.d) if replicas(self.d) > 0 else 0
        to_add = allowed - replica_count(list(running))
        operation = ""
        if to_add > 0:
            running, operation = by_size_newer(running), "up"
        elif to_add < 0:
            running, operation = by_size_older(running), "down"
        sizes: dict[str, int] = {}
        added = 0
        for rs in running:
            share = proportion(rs, self.d, to_add, added) if to_add else 0
            sizes[rs["metadata"]["name"]] = replicas(rs) + share
            added += share
        for i, rs in enumerate(running):
            name = rs["metadata"]["name"]
            if i == 0 and to_add:
                sizes[name] = max(sizes[name] + to_add - added, 0)  # leftovers to the largest
            await self.scale_rs(rs, sizes[name], operation or "up")

    async def cleanup(self, old: list[JSON]) -> None:
        """Delete the oldest spare ReplicaSets beyond ``revisionHistoryLimit`` (only empty, settled ones)."""
        limit = self.d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        for rs in by_revision(alive)[:max(len(alive) - int(limit), 0)]:
            status = rs.get("status") or {}
            if (status.get("replicas") or replicas(rs)
                    or rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0)):
                continue
            try:
                await self.env.client.delete(self.env.replicasets, self.namespace, rs["metadata"]["name"],
                                             uid=rs["metadata"]["uid"])
            except NotFound:
                pass

    # -- status ----------------------------------------------------------------------------------------
    async def sync_status(self, all_rses: list[JSON | None], new: JSON | None) -> None:
        """``syncDeploymentStatus``: counts and Available, Progressing left alone."""
        status = calculate_status(all_rses, new, self.d)
        if not json_equal(status, self.d["status"]):
            self.d["status"] = status
            await self.write()

    async def sync_rollout_status(self, all_rses: list[JSON | None], new: JSON | None) -> None:
        """``syncRolloutStatus``: counts and every condition, and when the progress deadline wants another
        look (kube computes that in the sync its own status write causes; this controller skips those)."""
        now = utcnow()
        status = rollout_status(self.d, all_rses, new, now)
        if json_equal(status, self.d["status"]):
            self.requeue = stuck_requeue(self.d, status, now)
            return
        self.d["status"] = status
        await self.write()
        self.requeue = stuck_requeue(self.d, status, now)

    async def sync(self) -> None:
        """A paused Deployment or a scaling event: resize, clean up history when paused, write status."""
        new, old = await self.new_and_old(create=False)
        await self.scale(new, old)
        if self.d["spec"].get("paused"):
            await self.cleanup(old)
        await self.sync_status([*old, new], new)
