"""The disruption controller: the status of every PodDisruptionBudget, which the eviction API obeys.

For a budget it counts the Pods its selector picks in its namespace: ``currentHealthy`` (Ready, not being
deleted, not recently evicted), ``desiredHealthy`` from ``minAvailable`` or ``maxUnavailable``, ``expectedPods``
and ``disruptionsAllowed`` (healthy minus desired, never below zero, and zero while no Pod is expected). An
integer ``minAvailable`` counts the Pods themselves; a percentage, and any ``maxUnavailable``, take the scale of
the Pods' controllers instead (ReplicationController, the Deployment above a ReplicaSet, a lone ReplicaSet, a
StatefulSet, or any kind with a scale subresource), summed once per controller; Pods without a controller are
left out of that sum and reported (event ``UnmanagedPods``). A controller that cannot be found fails the sync:
the budget is then written "fail safe" (``disruptionsAllowed: 0``, condition ``DisruptionAllowed=False``,
reason ``SyncFailed``).

``status.disruptedPods`` is written by the eviction handler (pod name -> time of the eviction it allowed); such
a Pod is not counted healthy for two minutes, after which it is dropped from the map (event ``NotDeleted``)
if it still is not being deleted. The condition ``DisruptionAllowed`` is True with reason ``SufficientPods``
or False with ``InsufficientPods``, as ``kubectl describe pdb`` shows it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Any

from nanokube.api.errors import Conflict, NotFound
from nanokube.api.labels import selector_from_label_selector
from nanokube.api.objects import deep_copy, get_path
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import now, parse_rfc3339, rfc3339

from .base import Controller

log = logging.getLogger(__name__)
DELETION_TIMEOUT = timedelta(minutes=2)
CONDITION = "DisruptionAllowed"
_WORKLOADS = (("", "v1", "replicationcontrollers"), ("apps", "v1", "replicasets"), ("apps", "v1", "deployments"),
              ("apps", "v1", "statefulsets"))


class ScaleError(Exception):
    """The expected number of Pods cannot be computed."""


def scaled_value(value: Any, total: int) -> int:
    """``intstr.GetScaledValueFromIntOrPercent`` rounding up."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise ScaleError("invalid value for IntOrString: invalid type: string is not a percentage")
    try:
        percent = int(text[:-1])
    except ValueError as err:
        raise ScaleError(f'invalid value "{text}": {err}') from err
    return math.ceil(percent * total / 100)


def pod_ready(pod: JSON) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def controller_ref(obj: JSON) -> JSON | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def go_selector(selector: JSON | None) -> str:
    """A label selector as Go's ``%v`` prints a ``*metav1.LabelSelector`` (kube's event text)."""
    if selector is None:
        return "nil"
    labels = selector.get("matchLabels") or {}
    shown = "".join(f"{k}: {labels[k]}," for k in sorted(labels))
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
                    f"Values:[{' '.join(e.get('values') or [])}],}},"
                    for e in selector.get("matchExpressions") or [])
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{shown}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


def set_condition(conditions: list[JSON], condition: JSON, when: str) -> list[JSON]:
    """``meta.SetStatusCondition``: replace the condition of the same type, keeping its transition time
    unless the status changes."""
    out = [dict(c) for c in conditions]
    for current in out:
        if current.get("type") == condition["type"]:
            if current.get("status") != condition["status"]:
                current["lastTransitionTime"] = when
            current.update({k: v for k, v in condition.items() if k != "lastTransitionTime"})
            return out
    out.append({**condition, "lastTransitionTime": when})
    return out


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        reg = client.registry
        pdbs, pods = reg.get("policy", "v1", "poddisruptionbudgets"), reg.get("", "v1", "pods")
        assert pdbs is not None and pods is not None
        self.pdbs_res = pdbs
        self.pdbs = self.informer(Informer(client, pdbs))
        self.pods = self.informer(Informer(client, pods))
        self.workloads: dict[str, Informer] = {}
        for group, version, plural in _WORKLOADS:
            resource = reg.get(group, version, plural)
            assert resource is not None
            self.workloads[resource.kind] = self.informer(Informer(client, resource))
            self.workloads[resource.kind].add_handler(self._on_workload)
        self.recorder = EventRecorder(client, "controllermanager")
        self.pdbs.add_handler(lambda kind, obj, old: self.queue.add(object_key(obj)))
        self.pods.add_handler(self._on_pod)

    def _budgets_in(self, namespace: str) -> list[JSON]:
        return [p for p in self.pdbs.items() if p["metadata"].get("namespace") == namespace]

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        for obj in (pod, old):
            if obj is None:
                continue
            labels = obj["metadata"].get("labels") or {}
            for pdb in self._budgets_in(obj["metadata"].get("namespace", "")):
                try:
                    if selector_from_label_selector((pdb.get("spec") or {}).get("selector")).matches(labels):
                        self.queue.add(object_key(pdb))
                except ValueError:
                    self.queue.add(object_key(pdb))

    def _on_workload(self, kind: str, obj: JSON, old: JSON | None) -> None:
        if old is not None and (old.get("spec") or {}).get("replicas") == (obj.get("spec") or {}).get("replicas"):
            return
        for pdb in self._budgets_in(obj["metadata"].get("namespace", "")):
            self.queue.add(object_key(pdb))

    async def sync(self, key: Hashable) -> float | None:
        pdb = self.pdbs.get(str(key))
        if pdb is None:
            return None
        try:
            return await self._try_sync(pdb)
        except Conflict:
            raise
        except Exception as err:
            log.warning("disruption budget %s: %s", key, err)
            await self._fail_safe(pdb, str(err))
            return None

    async def _try_sync(self, pdb: JSON) -> float | None:
        try:
            selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        except ValueError as err:
            await self.recorder.event(pdb, "Warning", "NoPods", f"Failed to get pods: {err}")
            raise
        namespace = pdb["metadata"]["namespace"]
        pods = [p for p in self.pods.items() if p["metadata"].get("namespace") == namespace
                and selector.matches(p["metadata"].get("labels") or {})]
        if not pods:
            await self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = await self._expected_pod_count(pdb, pods)
        except ScaleError as err:
            await self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                      f"Failed to calculate the number of expected pods: {err}")
            raise
        if unmanaged:
            await self.recorder.event(
                pdb, "Warning", "UnmanagedPods",
                f"Pods selected by this PodDisruptionBudget (selector: {go_selector(pdb['spec'].get('selector'))}) "
                "were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, "
                "which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" "
                "field of the PDB to an integer value.")
        current = now()
        disrupted, recheck = await self._disrupted_pods(pdb, pods, current)
        healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp") and p["metadata"]["name"]
                      not in disrupted and pod_ready(p))
        await self._write_status(pdb, healthy, desired, expected, disrupted)
        return None if recheck is None else max((recheck - current).total_seconds(), 0.0)

    async def _expected_pod_count(self, pdb: JSON, pods: list[JSON]) -> tuple[int, int, list[str]]:
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = await self._expected_scale(pods)
            return expected, max(expected - scaled_value(spec["maxUnavailable"], expected), 0), unmanaged
        minimum = spec.get("minAvailable")
        if minimum is None:
            return 0, 0, []
        if isinstance(minimum, int):
            return len(pods), minimum, []
        expected, unmanaged = await self._expected_scale(pods)
        return expected, scaled_value(minimum, expected), unmanaged

    async def _expected_scale(self, pods: list[JSON]) -> tuple[int, list[str]]:
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            found = await self._controller_scale(ref, pod["metadata"]["namespace"])
            if found is None:
                raise ScaleError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    def _cached(self, kind: str, namespace: str, ref: JSON) -> JSON | None:
        obj = self.workloads[kind].get(f"{namespace}/{ref.get('name')}")
        return obj if obj is not None and obj["metadata"].get("uid") == ref.get("uid") else None

    async def _controller_scale(self, ref: JSON, namespace: str) -> tuple[str, int] | None:
        """(uid, spec.replicas) of the controller whose scale counts for a Pod with this controller reference."""
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        kind = ref.get("kind")
        if kind == "ReplicationController" and group == "":
            found = self._cached("ReplicationController", namespace, ref)
        elif kind == "ReplicaSet" and group in ("apps", "extensions"):
            found = self._cached("ReplicaSet", namespace, ref)
            owner = controller_ref(found) if found is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                found = self._cached("Deployment", namespace, owner) or found
        elif kind == "StatefulSet" and group == "apps":
            found = self._cached("StatefulSet", namespace, ref)
        else:
            return await self._scale_subresource(ref, namespace)
        if found is None:
            return None
        return str(found["metadata"]["uid"]), int((found.get("spec") or {}).get("replicas", 1))

    async def _scale_subresource(self, ref: JSON, namespace: str) -> tuple[str, int] | None:
        group, _, version = str(ref.get("apiVersion", "")).rpartition("/")
        resource = self.client.registry.by_kind(group, version, str(ref.get("kind", "")))
        if resource is None:
            raise ScaleError(f'no matches for kind "{ref.get("kind")}" in version "{ref.get("apiVersion")}"')
        if resource.subresource("scale") is None:
            raise ScaleError(f"{resource.qualified} does not implement the scale subresource")
        try:
            obj = await self.client.get(resource, namespace, str(ref.get("name", "")))
        except NotFound:
            return None
        if obj["metadata"].get("uid") != ref.get("uid"):
            return None
        path = str((resource.scale_paths or {}).get("specReplicasPath", ".spec.replicas")).lstrip(".")
        return str(obj["metadata"]["uid"]), int(get_path(obj, path, 0) or 0)

    async def _disrupted_pods(self, pdb: JSON, pods: list[JSON],
                              current: datetime) -> tuple[dict[str, str], datetime | None]:
        recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
        kept: dict[str, str] = {}
        recheck: datetime | None = None
        for pod in pods:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp") or name not in recorded:
                continue
            expires = parse_rfc3339(str(recorded[name])) + DELETION_TIMEOUT
            if expires < current:
                await self.recorder.event(pod, "Warning", "NotDeleted",
                                          f"Pod was expected by PDB {pdb['metadata']['namespace']}/"
                                          f"{pdb['metadata']['name']} to be deleted but it wasn't")
                continue
            kept[name] = recorded[name]
            recheck = expires if recheck is None or expires < recheck else recheck
        return kept, recheck

    async def _write_status(self, pdb: JSON, healthy: int, desired: int, expected: int,
                            disrupted: dict[str, str]) -> None:
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        old = pdb.get("status") or {}
        generation = pdb["metadata"].get("generation", 1)
        status: JSON = {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                        "disruptionsAllowed": allowed, "observedGeneration": generation}
        if disrupted:
            status["disruptedPods"] = disrupted
        reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
        status["conditions"] = set_condition(old.get("conditions") or [], {
            "type": CONDITION, "status": "True" if allowed > 0 else "False", "reason": reason, "message": "",
            "observedGeneration": generation}, rfc3339())
        await self._put_status(pdb, status)

    async def _fail_safe(self, pdb: JSON, message: str) -> None:
        status = deep_copy(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        status["conditions"] = set_condition(status.get("conditions") or [], {
            "type": CONDITION, "status": "False", "reason": "SyncFailed", "message": message,
            "observedGeneration": status.get("observedGeneration", 0)}, rfc3339())
        await self._put_status(pdb, status)

    async def _put_status(self, pdb: JSON, status: JSON) -> None:
        if status == (pdb.get("status") or {}):
            return
        body = deep_copy(pdb)
        body["status"] = status
        await self.client.update(self.pdbs_res, pdb["metadata"]["namespace"], body, subresource="status")
