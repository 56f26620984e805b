"""The Deployment controller: informers, event routing and the top of a sync (kube's ``deployment_controller.go``).

A Deployment's key is queued when it changes, when a ReplicaSet it controls (or an orphan its selector
matches) changes, and, for Recreate, when one of its pods is deleted. A sync claims the ReplicaSets, then
goes one of kube's ways: a Deployment being deleted only gets status; a paused one, or one whose
``spec.replicas`` changed, is resized (``Rollout.sync``); otherwise its strategy takes a step.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from nanokube.api.errors import Conflict
from nanokube.api.labels import selector_from_label_selector
from nanokube.api.registry import Resource
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import now as utcnow

from ..base import Controller
from ..replicaset import OwnerIndex, WrittenStatus, claim, controller_ref, owner_reference
from .progress import (
    PAUSED,
    PROGRESSING,
    RESUMED,
    TIMED_OUT,
    get_condition,
    has_progress_deadline,
    new_condition,
)
from .progress import set_condition as set_cond
from .recreate import rollout_recreate
from .rolling import rollout_rolling
from .sync import Env, Rollout
from .util import DESIRED_REPLICAS, TemplateCache, active, int_annotation, replicas

log = logging.getLogger(__name__)


class DeploymentController(Controller):
    name = "deployment"
    workers = 5  # kube-controller-manager runs 5 concurrent syncs of each

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        deployments = self._resource("apps", "v1", "deployments")
        replicasets = self._resource("apps", "v1", "replicasets")
        self.env = Env(client, deployments, replicasets, EventRecorder(client, "deployment-controller"),
                       TemplateCache(), WrittenStatus())
        self.deployments = self.informer(Informer(client, deployments))
        self.replicasets = self.informer(Informer(client, replicasets))
        self.pods = self.informer(Informer(client, self._resource("", "v1", "pods")))
        self.deployment_index, self.rs_index, self.pod_index = OwnerIndex(), OwnerIndex(), OwnerIndex()
        self.deployments.add_handler(self.deployment_index.on_event)
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self.rs_index.on_event)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self.pod_index.on_event)
        self.pods.add_handler(self._on_pod)

    def _resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.client.registry.get(group, version, plural)
        assert found is not None, f"{group}/{version}/{plural} is not served"
        return found

    # -- informer events ---------------------------------------------------------------------------------
    def _owner(self, obj: JSON, ref: JSON | None) -> JSON | None:
        """The cached Deployment ``ref`` names, if it is still that one."""
        if ref is None or ref.get("kind") != "Deployment" or not str(ref.get("apiVersion", "")).startswith("apps/"):
            return None
        d = self.deployments.get(f"{obj['metadata'].get('namespace', '')}/{ref.get('name', '')}")
        return d if d is not None and d["metadata"].get("uid") == ref.get("uid") else None

    def _enqueue_matching(self, rs: JSON) -> None:
        labels = rs["metadata"].get("labels") or {}
        for d in self.deployment_index.in_namespace(rs["metadata"].get("namespace", "")):
            try:
                if selector_from_label_selector((d.get("spec") or {}).get("selector")).matches(labels):
                    self.queue.add(object_key(d))
            except ValueError:
                continue

    def _on_deployment(self, kind: str, d: JSON, old: JSON | None) -> None:
        key = object_key(d)
        if kind == "DELETED":
            self.env.written.forget(key)
        # Every change counts, the echo of our own status write included: as in kube, the sync it causes is
        # the one that sees the rollout complete and trims the history.
        self.queue.add(key)

    def _on_replicaset(self, kind: str, rs: JSON, old: JSON | None) -> None:
        ref = controller_ref(rs)
        if kind != "MODIFIED" or old is None:
            owner = self._owner(rs, ref)
            if owner is not None:
                self.queue.add(object_key(owner))
            elif kind == "ADDED" and ref is None:
                self._enqueue_matching(rs)
            return
        if rs["metadata"].get("resourceVersion") == old["metadata"].get("resourceVersion"):
            return
        old_ref = controller_ref(old)
        if old_ref != ref:
            previous = self._owner(old, old_ref)
            if previous is not None:
                self.queue.add(object_key(previous))
        owner = self._owner(rs, ref)
        if owner is not None:
            self.queue.add(object_key(owner))
        elif ref is None and (old_ref != ref or rs["metadata"].get("labels") != old["metadata"].get("labels")):
            self._enqueue_matching(rs)

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        """Recreate waits for old pods to be gone: their deletion wakes the Deployment."""
        if kind != "DELETED":
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(f"{pod['metadata'].get('namespace', '')}/{ref.get('name', '')}")
        if rs is None:
            return
        d = self._owner(rs, controller_ref(rs))
        if d is not None and ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            self.queue.add(object_key(d))

    # -- sync --------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> float | None:
        d = self.deployments.get(str(key))
        if d is None:
            return None
        selector = (d.get("spec") or {}).get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            await self._selecting_all(d)
            return None
        rses = await self._claim_replicasets(d)
        r = Rollout(self.env, d, rses, self._pods_by_rs(d, rses))
        if d["metadata"].get("deletionTimestamp"):
            new, old = await r.new_and_old(create=False)
            await r.sync_status([*old, new], new)
            return None
        await _check_paused_conditions(r)
        if d["spec"].get("paused") or await _is_scaling_event(r):
            await r.sync()
        elif (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            await rollout_recreate(r)
        else:
            await rollout_rolling(r)
        return r.requeue

    async def _selecting_all(self, d: JSON) -> None:
        r = Rollout(self.env, d, [], {})
        await r.event("Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is "
                                                 "required.")
        if r.d["status"].get("observedGeneration", 0) < d["metadata"].get("generation", 0):
            r.d["status"]["observedGeneration"] = d["metadata"]["generation"]
            await r.write()

    async def _claim_replicasets(self, d: JSON) -> list[JSON]:
        selector = selector_from_label_selector(d["spec"]["selector"])

        async def can_adopt() -> None:
            meta = d["metadata"]
            fresh = await self.client.get(self.env.deployments, meta["namespace"], meta["name"])
            if fresh["metadata"].get("uid") != meta["uid"] or fresh["metadata"].get("deletionTimestamp"):
                raise Conflict(f"deployment {meta['namespace']}/{meta['name']} is gone or going; not adopting")

        return await claim(self.client, self.env.replicasets, d, owner_reference(d, "apps/v1", "Deployment"),
                           selector, self.rs_index.candidates(d), can_adopt)

    def _pods_by_rs(self, d: JSON, rses: list[JSON]) -> dict[str, list[JSON]]:
        """The pods of each claimed ReplicaSet that the Deployment's selector matches (Recreate needs them)."""
        if ((d.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            return {}
        selector = selector_from_label_selector(d["spec"]["selector"])
        return {rs["metadata"]["uid"]: [p for p in self.pod_index.owned_by(rs["metadata"]["uid"])
                                        if selector.matches(p["metadata"].get("labels") or {})] for rs in rses}


async def _check_paused_conditions(r: Rollout) -> None:
    """Pausing and resuming show as an Unknown Progressing condition, so a resumed rollout's deadline counts
    from the resume (and a reported timeout is left as it is)."""
    if not has_progress_deadline(r.d):
        return
    cond = get_condition(r.d["status"], PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return
    paused = bool(r.d["spec"].get("paused"))
    shown = cond is not None and cond.get("reason") == PAUSED
    if paused and not shown:
        set_cond(r.d["status"], new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", utcnow()))
    elif not paused and shown:
        set_cond(r.d["status"], new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", utcnow()))
    else:
        return
    await r.write()


async def _is_scaling_event(r: Rollout) -> bool:
    """``spec.replicas`` changed since the active ReplicaSets were last sized (their desired-replicas)."""
    new, old = await r.new_and_old(create=False)
    for rs in active([*old, new]):
        desired = int_annotation(rs, DESIRED_REPLICAS)
        if desired is not None and desired != replicas(r.d):
            return True
    return False
