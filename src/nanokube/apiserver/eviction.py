"""The pods/eviction subresource: delete a Pod unless a PodDisruptionBudget forbids it, as kube's eviction
REST does.

Pods that are finished, Pending or already being deleted go without asking. Otherwise the one budget that
selects the Pod must allow a disruption: then its ``disruptionsAllowed`` is decremented and the Pod recorded in
``disruptedPods`` (the disruption controller recomputes both later), the Pod gets the ``DisruptionTarget``
condition, and it is deleted. A budget that allows none answers 429, which ``kubectl drain`` retries.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.errors import Conflict, Forbidden, InternalError, TooManyRequests
from nanokube.api.labels import selector_from_label_selector
from nanokube.api.registry import Registry, Resource
from nanokube.util.timeutil import rfc3339

from .storage import JSON, DeleteOptions, ListOptions, ObjectStorage

_MAX_DISRUPTED = 2000


def _too_many(message: str, cause: str) -> TooManyRequests:
    return TooManyRequests(message, details={"causes": [{"reason": "DisruptionBudget", "message": cause}]},
                           headers={"Retry-After": "5"})


class Eviction:
    def __init__(self, storage: ObjectStorage, registry: Registry) -> None:
        self.storage = storage
        pods = registry.get("", "v1", "pods")
        pdbs = registry.get("policy", "v1", "poddisruptionbudgets")
        assert pods is not None and pdbs is not None
        self.pods: Resource = pods
        self.pdbs: Resource = pdbs

    async def evict(self, namespace: str, name: str, eviction: JSON) -> None:
        pod = await self.storage.get(self.pods, namespace, name)
        options = eviction.get("deleteOptions") or {}
        pre = options.get("preconditions") or {}
        dry_run = bool(options.get("dryRun"))
        opts = DeleteOptions(grace_period_seconds=options.get("gracePeriodSeconds"), precondition_uid=pre.get("uid"),
                             precondition_resource_version=pre.get("resourceVersion"), dry_run=dry_run)
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
            await self.storage.delete(self.pods, namespace, name, opts)
            return
        budgets = await self._budgets_for(pod)
        if len(budgets) > 1:
            raise InternalError("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                                "does not support.")
        if budgets and not self._unhealthy_may_go(pod, budgets[0]):
            await self._take_disruption(budgets[0], name, dry_run)
        if not dry_run:
            await self._mark_disruption_target(namespace, name)
        await self.storage.delete(self.pods, namespace, name, opts)

    async def _budgets_for(self, pod: JSON) -> list[JSON]:
        page = await self.storage.list_objects(self.pdbs, pod["metadata"]["namespace"], ListOptions())
        labels = pod["metadata"].get("labels") or {}
        found = []
        for pdb in page.items:
            selector = (pdb.get("spec") or {}).get("selector")
            if selector is None:
                continue
            try:
                if selector_from_label_selector(selector).matches(labels):
                    found.append(pdb)
            except ValueError:
                continue
        return found

    @staticmethod
    def _unhealthy_may_go(pod: JSON, pdb: JSON) -> bool:
        """An unready Pod may go without using up the budget when the policy says so."""
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
        if ready:
            return False
        policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if policy == "AlwaysAllow":
            return True
        status = pdb.get("status") or {}
        desired = int(status.get("desiredHealthy", 0))
        return int(status.get("currentHealthy", 0)) >= desired > 0

    async def _take_disruption(self, pdb: JSON, pod_name: str, dry_run: bool) -> None:
        budget = pdb["metadata"]["name"]

        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            status = live.setdefault("status", {})
            if int(status.get("observedGeneration", 0)) < int(live["metadata"].get("generation", 1)):
                raise _too_many("Cannot evict pod as it would violate the pod's disruption budget.",
                                f"The disruption budget {budget} is still being processed by the server.")
            allowed = int(status.get("disruptionsAllowed", 0))
            if allowed < 0:
                raise Forbidden("pdb disruptions allowed is negative")
            disrupted: dict[str, Any] = dict(status.get("disruptedPods") or {})
            if len(disrupted) > _MAX_DISRUPTED:
                raise Forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB controller")
            if allowed == 0:
                raise _too_many("Cannot evict pod as it would violate the pod's disruption budget.",
                                f"The disruption budget {budget} needs {status.get('desiredHealthy', 0)} healthy "
                                f"pods and has {status.get('currentHealthy', 0)} currently")
            status["disruptionsAllowed"] = allowed - 1
            disrupted[pod_name] = rfc3339()
            status["disruptedPods"] = disrupted
            if allowed - 1 == 0:
                conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
                conditions.append({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                                   "message": "", "lastTransitionTime": rfc3339(),
                                   "observedGeneration": live["metadata"].get("generation", 1)})
                status["conditions"] = conditions
            return live

        try:
            await self.storage.update(self.pdbs, pdb["metadata"]["namespace"], budget, mutate, subresource="status",
                                      dry_run=dry_run)
        except Conflict:
            raise _too_many("Cannot evict pod as it would violate the pod's disruption budget.",
                            f"The disruption budget {budget} is being updated; try again") from None

    async def _mark_disruption_target(self, namespace: str, name: str) -> None:
        def mutate(live: JSON | None) -> JSON:
            assert live is not None
            status = live.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
            conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting", "lastTransitionTime": rfc3339()})
            status["conditions"] = conditions
            return live

        await self.storage.update(self.pods, namespace, name, mutate, subresource="status")
