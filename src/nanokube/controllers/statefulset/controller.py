"""The StatefulSet controller (``pkg/controller/statefulset``): stable names, ordered Pods, claims per Pod.

Informers on StatefulSets, Pods, PersistentVolumeClaims and ControllerRevisions only enqueue the key
(``namespace/name``) of the set concerned: a Pod or revision wakes its controller, an orphan wakes every set
whose selector matches it (one may adopt it), a deleted claim wakes the set whose member used it (a member
waiting for a stale claim to go). A sync adopts orphaned revisions, claims the set's Pods, works out the current
and update revisions, runs one ``SetUpdate`` pass, records the status and trims the revision history. Pod names
are fixed, so a second create of the same Pod meets ``AlreadyExists`` instead of making a twin: no expectations
are needed to guard against a lagging cache.

Run it as ``StatefulSetController(client).run(stop=stop)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from datetime import datetime

from nanokube.api.errors import Conflict
from nanokube.api.labels import Selector, selector_from_label_selector
from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client
from nanokube.util import timeutil

from ..base import Controller
from ..history import History, sort_revisions
from . import history as set_history
from . import status as set_status
from .adoption import OwnerIndex, adopt_orphan_revisions, claim_pods
from .identity import KIND, claim_templates, controller_ref, is_ready, min_ready_seconds
from .podcontrol import StatefulPodControl
from .update import SetUpdate

log = logging.getLogger(__name__)
COMPONENT = "statefulset-controller"


class StatefulSetController(Controller):
    name = COMPONENT
    workers = 2

    def __init__(self, client: Client, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(client)
        self.now = clock or timeutil.now
        self.sets_res = self._resource("apps", "v1", "statefulsets")
        self.pods_res = self._resource("", "v1", "pods")
        self.recorder = EventRecorder(client, COMPONENT)
        self.sets = self.informer(Informer(client, self.sets_res))
        self.sets.add_handler(self._on_set)
        self._by_namespace: dict[str, dict[str, JSON]] = {}
        self.pods = self.informer(Informer(client, self.pods_res))
        self.pod_index = OwnerIndex()
        self.pods.add_handler(self.pod_index.on_event)
        self.pods.add_handler(self._on_pod)
        self.claims = self.informer(Informer(client, self._resource("", "v1", "persistentvolumeclaims")))
        self.claims.add_handler(self._on_claim)
        self.history = History(client)
        self.revisions = self.informer(Informer(client, self.history.resource))
        self.revisions.add_handler(self.history.on_event)
        self.revisions.add_handler(self._on_revision)
        self.pod_control = StatefulPodControl(client, self.claims, self.recorder)

    def _resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.client.registry.get(group, version, plural)
        assert found is not None, f"{group}/{version}/{plural} is not served"
        return found

    # -- informer events ---------------------------------------------------------------------------------
    def _on_set(self, kind: str, sts: JSON, old: JSON | None) -> None:
        bucket = self._by_namespace.setdefault(sts["metadata"].get("namespace", ""), {})
        if kind == "DELETED":
            bucket.pop(object_key(sts), None)
        else:
            bucket[object_key(sts)] = sts
        self.queue.add(object_key(sts))

    def _owner(self, obj: JSON, ref: JSON | None) -> str | None:
        """The key of the cached set ``ref`` names (same uid), if any."""
        if ref is None or ref.get("kind") != KIND or str(ref.get("apiVersion", "")).split("/")[0] != "apps":
            return None
        key = f"{obj['metadata'].get('namespace', '')}/{ref.get('name', '')}"
        sts = self.sets.get(key)
        return key if sts is not None and sts["metadata"].get("uid") == ref.get("uid") else None

    def _enqueue_matching(self, obj: JSON) -> None:
        """An orphan wakes every set in its namespace whose selector matches it."""
        labels = obj["metadata"].get("labels") or {}
        for key, sts in self._by_namespace.get(obj["metadata"].get("namespace", ""), {}).items():
            try:
                if selector_from_label_selector((sts.get("spec") or {}).get("selector")).matches(labels):
                    self.queue.add(key)
            except ValueError:
                continue

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        ref = controller_ref(pod)
        owner = self._owner(pod, ref)
        if kind == "DELETED" or kind == "ADDED":
            if owner is not None:
                self.queue.add(owner)
            elif ref is None and kind == "ADDED" and not pod["metadata"].get("deletionTimestamp"):
                self._enqueue_matching(pod)
            return
        assert old is not None
        if pod["metadata"].get("resourceVersion") == old["metadata"].get("resourceVersion"):
            return
        old_ref = controller_ref(old)
        if old_ref != ref:
            previous = self._owner(old, old_ref)
            if previous is not None:
                self.queue.add(previous)
        if owner is not None:
            self.queue.add(owner)
            min_ready = min_ready_seconds(self.sets.get(owner) or {})
            if min_ready and is_ready(pod) and not is_ready(old):
                self.queue.add_after(owner, min_ready + 0.05)
            return
        labels_changed = (pod["metadata"].get("labels") or {}) != (old["metadata"].get("labels") or {})
        if ref is None and (labels_changed or old_ref is not None):
            self._enqueue_matching(pod)

    def _on_revision(self, kind: str, revision: JSON, old: JSON | None) -> None:
        ref = controller_ref(revision)
        owner = self._owner(revision, ref)
        if owner is not None:
            self.queue.add(owner)
        elif ref is None and kind != "DELETED":
            self._enqueue_matching(revision)
        if old is not None and controller_ref(old) != ref:
            previous = self._owner(old, controller_ref(old))
            if previous is not None:
                self.queue.add(previous)

    def _on_claim(self, kind: str, claim: JSON, old: JSON | None) -> None:
        """A claim gone may unblock the member that waited for it (``whenScaled: Delete`` then scale up)."""
        if kind != "DELETED":
            return
        name = claim["metadata"].get("name", "")
        for key, sts in self._by_namespace.get(claim["metadata"].get("namespace", ""), {}).items():
            for template in claim_templates(sts):
                prefix = f"{(template.get('metadata') or {}).get('name', '')}-{sts['metadata']['name']}-"
                if name.startswith(prefix):
                    self.queue.add(key)

    # -- sync --------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> float | None:
        assert isinstance(key, str)
        sts = self.sets.get(key)
        if sts is None:
            return None
        try:
            selector = selector_from_label_selector((sts.get("spec") or {}).get("selector"))
        except ValueError as err:
            log.warning("StatefulSet %s has an invalid selector: %s", key, err)
            return None

        async def can_adopt() -> None:
            await self._can_adopt(sts)

        await adopt_orphan_revisions(self.history, sts, selector, can_adopt)
        pods = await claim_pods(self.client, self.pods_res, sts, selector, self.pod_index, can_adopt)
        return await self._sync_set(sts, selector, pods)

    async def _sync_set(self, sts: JSON, selector: Selector, pods: list[JSON]) -> float | None:
        revisions = sort_revisions(self.history.list(sts, selector))
        current, update, collision_count = await set_history.resolve(self.history, sts, revisions)
        one_pass = SetUpdate(self.pod_control, sts, current, update, collision_count, self.now())
        status, error = await one_pass.run(pods)
        set_status.complete_rolling_update(sts, status)
        if set_status.inconsistent(sts, status):
            await set_status.write_status(self.client, self.sets_res, sts, status)
        await set_history.truncate(self.history, sts, pods, revisions, current, update)
        if error is not None:
            raise error
        return one_pass.recheck_after()

    async def _can_adopt(self, sts: JSON) -> None:
        """Adopt only for a set that still exists and is not being deleted (read fresh, not from the cache)."""
        meta = sts["metadata"]
        fresh = await self.client.get(self.sets_res, meta.get("namespace", ""), meta["name"])
        if fresh["metadata"].get("uid") != meta["uid"]:
            raise Conflict(f"original StatefulSet {meta.get('namespace')}/{meta['name']} is gone: got uid "
                           f"{fresh['metadata'].get('uid')}, wanted {meta['uid']}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise Conflict(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                           f"{fresh['metadata']['deletionTimestamp']}")
