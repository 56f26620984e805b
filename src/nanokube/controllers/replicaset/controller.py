"""The ReplicaSet controller, serving ReplicaSets (apps/v1) and ReplicationControllers (v1).

kube-controller-manager runs the ReplicationController through its ReplicaSet code behind an adapter; here one
controller serves both kinds, with keys ``(plural, "namespace/name")`` and one pod informer for both. A sync
claims pods (adopting orphans that match, releasing owned pods that stopped matching), creates the missing ones
in slow-start batches (1, 2, 4, ...) or deletes the extra ones kube would delete first, then writes ``status``
(replicas, fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration, terminatingReplicas and
the ``ReplicaFailure`` condition). Pods that are terminal or being deleted do not count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.api.labels import Selector, selector_from_label_selector, selector_from_set
from nanokube.api.objects import deep_copy, json_equal
from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client

from ..base import Controller
from .expectations import Expectations, WrittenStatus
from .pods import (
    OwnerIndex,
    claim,
    controller_ref,
    is_pod_active,
    is_pod_ready,
    is_pod_terminal,
    owner_reference,
)
from .ranking import pods_to_delete
from .status import calculate_status, comparable, recheck_after, status_only

log = logging.getLogger(__name__)
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1


@dataclass
class Kind:
    """What differs between the two kinds this controller serves."""

    resource: Resource
    api_version: str
    kind: str
    recorder: EventRecorder
    informer: Informer
    map_selector: bool  # ReplicationController: spec.selector is a plain label map
    terminating: bool  # the status carries terminatingReplicas (ReplicaSet only)

    def selector(self, obj: JSON) -> Selector:
        raw = (obj.get("spec") or {}).get("selector")
        if self.map_selector:
            return selector_from_set(raw)
        return selector_from_label_selector(raw)


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 5  # kube-controller-manager runs 5 concurrent syncs of each

    def __init__(self, client: Client, *, burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(client)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations()
        self.written = WrittenStatus()
        self.pods_res = self._resource("", "v1", "pods")
        self.pods = self.informer(Informer(client, self.pods_res))
        self.pod_index = OwnerIndex()
        self.pods.add_handler(self.pod_index.on_event)
        self.pods.add_handler(self._on_pod)
        self.kinds: dict[str, Kind] = {}
        self.owner_index: dict[str, OwnerIndex] = {}
        for group, version, plural, kind, component in (
                ("apps", "v1", "replicasets", "ReplicaSet", "replicaset-controller"),
                ("", "v1", "replicationcontrollers", "ReplicationController", "replication-controller")):
            resource = self._resource(group, version, plural)
            informer = self.informer(Informer(client, resource))
            self.kinds[plural] = Kind(resource, resource.api_version, kind, EventRecorder(client, component),
                                      informer, map_selector=not group, terminating=bool(group))
            index = self.owner_index[plural] = OwnerIndex()
            informer.add_handler(index.on_event)
            informer.add_handler(self._owner_handler(plural))

    def _resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.client.registry.get(group, version, plural)
        assert found is not None, f"{group}/{version}/{plural} is not served"
        return found

    # -- informer events ---------------------------------------------------------------------------------
    def _owner_handler(self, plural: str) -> Callable[[str, JSON, JSON | None], None]:
        def handle(kind: str, obj: JSON, old: JSON | None) -> None:
            key = (plural, object_key(obj))
            if kind == "DELETED":
                self.expectations.forget(key)
                self.written.forget(key)
            elif (kind == "MODIFIED" and old is not None and status_only(obj, old)
                  and self.written.is_echo(key, obj.get("status"))):
                return  # the echo of our own status write: nothing to act on
            self.queue.add(key)
        return handle

    def _owner_of(self, pod: JSON, ref: JSON | None) -> tuple[str, str] | None:
        """The key of the ReplicaSet or ReplicationController ``ref`` names, if it is the one in the cache."""
        if ref is None:
            return None
        for plural, kind in self.kinds.items():
            if ref.get("kind") != kind.kind or ref.get("apiVersion", "").split("/")[0] != kind.api_version.split("/")[0]:
                continue
            key = f"{pod['metadata'].get('namespace', '')}/{ref.get('name', '')}"
            owner = kind.informer.get(key)
            if owner is not None and owner["metadata"].get("uid") == ref.get("uid"):
                return plural, key
        return None

    def _enqueue_matching(self, pod: JSON) -> None:
        """An orphan wakes every owner whose selector matches it: one of them may adopt it."""
        labels = pod["metadata"].get("labels") or {}
        namespace = pod["metadata"].get("namespace", "")
        for plural, kind in self.kinds.items():
            for owner in self.owner_index[plural].in_namespace(namespace):
                try:
                    if kind.selector(owner).matches(labels):
                        self.queue.add((plural, object_key(owner)))
                except ValueError:
                    continue

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        if kind == "DELETED":
            self._pod_deleted(pod)
            return
        if kind == "ADDED":
            if pod["metadata"].get("deletionTimestamp"):
                self._pod_deleted(pod)
                return
            owner = self._owner_of(pod, controller_ref(pod))
            if owner is not None:
                self.expectations.creation_observed(owner)
                self.queue.add(owner)
            else:
                self._enqueue_matching(pod)
            return
        assert old is not None
        if pod["metadata"].get("resourceVersion") == old["metadata"].get("resourceVersion"):
            return
        if _what_counts(pod) == _what_counts(old):
            return  # a status detail a ReplicaSet does not count (container states, IPs, timestamps)
        labels_changed = (pod["metadata"].get("labels") or {}) != (old["metadata"].get("labels") or {})
        if pod["metadata"].get("deletionTimestamp"):
            # Counted as gone right away, so a replacement is made before the kubelet finishes.
            self._pod_deleted(pod)
            if labels_changed:
                self._pod_deleted(old)
            return
        ref, old_ref = controller_ref(pod), controller_ref(old)
        if old_ref is not None and old_ref != ref:
            previous = self._owner_of(old, old_ref)
            if previous is not None:
                self.queue.add(previous)
        owner = self._owner_of(pod, ref)
        if owner is not None:
            # Updates of one owner's Pods come in bursts: look once they have settled a little (kube's Job
            # controller batches the same way). Creations and deletions above stay immediate.
            self.queue.add_after(owner, POD_UPDATE_BATCH)
            min_ready = int((self.kinds[owner[0]].informer.get(owner[1]) or {}).get("spec", {})
                            .get("minReadySeconds") or 0)
            if min_ready and is_pod_ready(pod) and not is_pod_ready(old):
                self.queue.add_after(owner, min_ready + 1)
            return
        if ref is None and (labels_changed or old_ref != ref):
            self._enqueue_matching(pod)

    def _pod_deleted(self, pod: JSON) -> None:
        owner = self._owner_of(pod, controller_ref(pod))
        if owner is not None:
            self.expectations.deletion_observed(owner, object_key(pod))
            self.queue.add(owner)

    # -- sync --------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> float | None:
        assert isinstance(key, tuple)
        plural, name_key = key
        kind = self.kinds[plural]
        owner = kind.informer.get(name_key)
        if owner is None:
            self.expectations.forget(key)
            return None
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = kind.selector(owner)
        except ValueError as err:
            log.warning("%s %s has an invalid selector: %s", kind.kind, name_key, err)
            return None
        uid = owner["metadata"]["uid"]
        active: list[JSON] = []
        terminating = 0
        for pod in self.pod_index.candidates(owner):
            if is_pod_active(pod):
                active.append(pod)
            elif (not is_pod_terminal(pod) and (controller_ref(pod) or {}).get("uid") == uid
                  and selector.matches(pod["metadata"].get("labels") or {})):
                terminating += 1
        pods = await claim(self.client, self.pods_res, owner, owner_reference(owner, kind.api_version, kind.kind),
                           selector, active, lambda: self._can_adopt(kind, owner))
        error: ApiError | None = None
        if needs_sync and not owner["metadata"].get("deletionTimestamp"):
            deleted: set[str] = set()
            try:
                await self._manage(kind, key, owner, pods, deleted)
            except ApiError as err:
                error = err
            # Unlike kube, pods deleted just now no longer count: a Deployment reading this status must not
            # take them for available while it decides how far to scale down.
            pods = [p for p in pods if object_key(p) not in deleted]
        status = calculate_status(owner, pods, terminating if kind.terminating else None, error)
        written = await self._write_status(kind, key, owner, status)
        if error is not None:
            raise error
        return recheck_after(written, pods)

    async def _can_adopt(self, kind: Kind, owner: JSON) -> None:
        """Adopt only for an owner that still exists and is not being deleted (read fresh, not from cache)."""
        meta = owner["metadata"]
        fresh = await self.client.get(kind.resource, meta.get("namespace", ""), meta["name"])
        if fresh["metadata"].get("uid") != meta["uid"]:
            raise Conflict(f"original {kind.kind} {meta.get('namespace')}/{meta['name']} is gone: got uid "
                           f"{fresh['metadata'].get('uid')}, wanted {meta['uid']}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise Conflict(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                           f"{fresh['metadata']['deletionTimestamp']}")

    async def _manage(self, kind: Kind, key: tuple[str, str], owner: JSON, pods: list[JSON],
                      deleted: set[str]) -> None:
        diff = len(pods) - int((owner.get("spec") or {}).get("replicas", 1))
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            created, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH,
                                                    lambda: self._create_pod(kind, owner))
            for _ in range(count - created):
                self.expectations.creation_observed(key)  # never sent: the informer will not see them
            if error is not None:
                raise error
        elif diff > 0:
            victims = pods_to_delete(pods, self._related_pods(kind, owner), min(diff, self.burst_replicas))
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod(kind, key, owner, p) for p in victims))
            deleted.update(object_key(p) for p, e in zip(victims, results, strict=True) if e is None)
            errors = [e for e in results if e is not None]
            if errors:
                raise errors[0]

    def _related_pods(self, kind: Kind, owner: JSON) -> list[JSON]:
        """Pods of every ReplicaSet with the same controller (a Deployment's old and new ReplicaSets)."""
        ref = controller_ref(owner)
        if ref is None:
            return self.pod_index.owned_by(owner["metadata"]["uid"])
        siblings = self.owner_index[kind.resource.plural].owned_by(ref["uid"])
        return [p for s in siblings for p in self.pod_index.owned_by(s["metadata"]["uid"])]

    async def _create_pod(self, kind: Kind, owner: JSON) -> None:
        meta = owner["metadata"]
        template = (owner.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        if not tmeta.get("labels"):
            raise ApiError("unable to create pods, no labels")
        pod_meta: JSON = {"generateName": f"{meta['name']}-", "labels": dict(tmeta["labels"]),
                          "ownerReferences": [owner_reference(owner, kind.api_version, kind.kind)]}
        for field in ("annotations", "finalizers"):
            if tmeta.get(field):
                pod_meta[field] = deep_copy(tmeta[field])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": deep_copy(template.get("spec") or {})}
        try:
            created = await self.client.create(self.pods_res, meta.get("namespace", ""), pod)
        except ApiError as err:
            if _namespace_terminating(err):
                return  # every create will fail; nothing to report
            await kind.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {err.message}")
            raise
        await kind.recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pod(self, kind: Kind, key: tuple[str, str], owner: JSON, pod: JSON) -> ApiError | None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(self.pods_res, pod["metadata"].get("namespace", ""), name)
        except ApiError as err:
            self.expectations.deletion_observed(key, object_key(pod))  # the informer will not see it go
            if isinstance(err, NotFound):
                return None
            await kind.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {err.message}")
            return err
        await kind.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    async def _write_status(self, kind: Kind, key: tuple[str, str], owner: JSON, status: JSON) -> JSON:
        """``updateReplicaSetStatus``: write when anything changed, retrying once on a stale read."""
        current = owner.get("status") or {}
        generation = owner["metadata"].get("generation", 0)
        if (json_equal(comparable(current), comparable(status)) and current.get("observedGeneration") == generation
                and self.written.consistent(key, owner.get("status"))):
            return owner
        meta = owner["metadata"]
        body = deep_copy(owner)
        for attempt in range(2):
            status["observedGeneration"] = body["metadata"].get("generation", 0)
            body["status"] = status
            try:
                written = await self.client.update(kind.resource, meta.get("namespace", ""), body,
                                                   subresource="status")
                self.written.remember(key, written.get("status"))
                return written
            except Conflict:
                if attempt:
                    raise
                body = deep_copy(await self.client.get(kind.resource, meta.get("namespace", ""), meta["name"]))
        return owner


def _namespace_terminating(err: ApiError) -> bool:
    causes = (err.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


async def slow_start_batch(count: int, initial: int, create: Callable[[], Awaitable[Any]]) -> tuple[int, ApiError | None]:
    """Run ``create`` ``count`` times in batches of 1, 2, 4, ... (each batch concurrently), stopping after the
    first batch with a failure. Returns how many succeeded and the first error."""
    done = 0
    size = min(count, initial)
    while size > 0:
        results = await asyncio.gather(*(create() for _ in range(size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        done += size - len(errors)
        if errors:
            first = errors[0]
            if not isinstance(first, ApiError):
                raise first
            return done, first
        count -= size
        size = min(2 * size, count)
    return done, None


POD_UPDATE_BATCH = 0.25


def _what_counts(pod: JSON) -> tuple[object, ...]:
    """The parts of a Pod a ReplicaSet's sync reads: ownership, labels, deletion, phase and readiness."""
    meta = pod["metadata"]
    status = pod.get("status") or {}
    ready = next(((c.get("status"), c.get("lastTransitionTime")) for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), None)
    return (meta.get("labels"), meta.get("ownerReferences"), meta.get("deletionTimestamp"), status.get("phase"),
            ready, (pod.get("spec") or {}).get("nodeName"))
