"""Node lifecycle: nodes that stop reporting become Unknown, get NoExecute taints, and lose their Pods.

Every ``monitor_period`` the controller looks at each Node's last sign of life (its Lease in
``kube-node-lease`` and its Ready condition's heartbeat). Silent for longer than ``grace_period``: all its
conditions turn ``Unknown`` (``NodeStatusUnknown``, "Kubelet stopped posting node status."), its Pods are
marked not ready, and it is tainted ``node.kubernetes.io/unreachable`` (NoSchedule and NoExecute); a node
reporting Ready=False is tainted ``node.kubernetes.io/not-ready`` instead. A healthy node loses those taints.

The taint manager half evicts Pods from NoExecute-tainted nodes: at once when a taint is not tolerated, after
the smallest matching ``tolerationSeconds`` otherwise (the API server gives every Pod 300 s tolerations for
both taints by default). Controllers then replace the evicted Pods elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from nanokube.api.errors import ApiError, Conflict, NotFound
from nanokube.api.objects import deep_copy
from nanokube.api.taints import tolerates as toleration_tolerates
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client
from nanokube.util.timeutil import now, parse_rfc3339, rfc3339

from .base import Controller

log = logging.getLogger(__name__)
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
_MANAGED = (UNREACHABLE, NOT_READY)


@dataclass
class NodeLifecycleSettings:
    grace_period: float = 40.0  # node-monitor-grace-period
    monitor_period: float = 5.0  # node-monitor-period


def tolerates(tolerations: list[JSON], taint: JSON) -> JSON | None:
    """The toleration that matches ``taint``, or None."""
    return next((tol for tol in tolerations if toleration_tolerates(tol, taint)), None)


class NodeLifecycleController(Controller):
    name = "node-lifecycle"

    def __init__(self, client: Client, settings: NodeLifecycleSettings | None = None) -> None:
        super().__init__(client)
        self.settings = settings or NodeLifecycleSettings()
        reg = client.registry
        nodes, leases, pods = reg.get("", "v1", "nodes"), reg.get("coordination.k8s.io", "v1", "leases"), \
            reg.get("", "v1", "pods")
        assert nodes is not None and leases is not None and pods is not None
        self.nodes_res, self.pods_res = nodes, pods
        self.nodes = self.informer(Informer(client, nodes))
        self.leases = self.informer(Informer(client, leases, namespace="kube-node-lease"))
        self.pods = self.informer(Informer(client, pods))
        self.recorder = EventRecorder(client, "node-controller")
        self.nodes.add_handler(lambda kind, obj, old: self.queue.add(("node", obj["metadata"]["name"])))
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if kind != "DELETED" and node:
            self.queue.add(("node", node))

    async def sync(self, key: Hashable) -> float | None:
        assert isinstance(key, tuple)
        name = str(key[1])
        node = self.nodes.get(name)
        if node is None:
            return None
        node = await self._monitor(node)
        wait = await self._evict(node)
        return min(self.settings.monitor_period, wait) if wait is not None else self.settings.monitor_period

    # -- health ------------------------------------------------------------------------------------------
    def _last_seen(self, node: JSON) -> datetime:
        times = [parse_rfc3339(node["metadata"]["creationTimestamp"])]
        lease = self.leases.get(f"kube-node-lease/{node['metadata']['name']}")
        if lease is not None and (lease.get("spec") or {}).get("renewTime"):
            times.append(parse_rfc3339(lease["spec"]["renewTime"]))
        for cond in (node.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("lastHeartbeatTime"):
                times.append(parse_rfc3339(cond["lastHeartbeatTime"]))
        return max(times)

    async def _monitor(self, node: JSON) -> JSON:
        name = node["metadata"]["name"]
        silent = now() - self._last_seen(node) > timedelta(seconds=self.settings.grace_period)
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if silent and (ready is None or ready.get("status") != "Unknown"):
            node = await self._mark_unknown(node)
            await self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
            ready = next(c for c in node["status"]["conditions"] if c.get("type") == "Ready")
        status = (ready or {}).get("status", "Unknown")
        wanted = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(status)
        return await self._set_taints(node, wanted)

    async def _mark_unknown(self, node: JSON) -> JSON:
        stamp = rfc3339()
        updated = deep_copy(node)
        conditions = updated.setdefault("status", {}).setdefault("conditions", [])
        if not any(c.get("type") == "Ready" for c in conditions):
            conditions.append({"type": "Ready"})
        for cond in conditions:
            if cond.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
                cond.setdefault("lastHeartbeatTime", stamp)
        log.info("node %s stopped reporting; marking it Unknown", node["metadata"]["name"])
        return await self.client.update(self.nodes_res, "", updated, subresource="status")

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self.pods.items():
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                continue
            patched = [dict(c, status="False", lastTransitionTime=rfc3339()) if c.get("type") == "Ready" else c
                       for c in conditions]
            try:
                await self.client.patch(self.pods_res, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                        {"status": {"conditions": patched}}, subresource="status")
            except NotFound:
                pass

    async def _set_taints(self, node: JSON, wanted: str | None) -> JSON:
        for _ in range(3):
            taints = list((node.get("spec") or {}).get("taints") or [])
            kept = [t for t in taints if t.get("key") not in _MANAGED or t.get("key") == wanted]
            if wanted is not None:
                for effect in ("NoSchedule", "NoExecute"):
                    if not any(t.get("key") == wanted and t.get("effect") == effect for t in kept):
                        kept.append({"key": wanted, "effect": effect, "timeAdded": rfc3339()})
            if kept == taints:
                return node
            updated = deep_copy(node)
            updated.setdefault("spec", {})["taints"] = kept
            if not kept:
                updated["spec"].pop("taints")
            try:
                return await self.client.update(self.nodes_res, "", updated)
            except Conflict:  # the cache was behind: look at the stored node and decide again
                node = await self.client.get(self.nodes_res, "", node["metadata"]["name"])
        raise Conflict.modified("nodes", "", node["metadata"]["name"])

    # -- taint manager -----------------------------------------------------------------------------------
    async def _evict(self, node: JSON) -> float | None:
        """Delete Pods that do not tolerate the node's NoExecute taints (now, or once their tolerationSeconds
        run out). Returns seconds until the next pending eviction."""
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return None
        soonest: float | None = None
        for pod in self.pods.items():
            if (pod.get("spec") or {}).get("nodeName") != node["metadata"]["name"]:
                continue
            if pod["metadata"].get("deletionTimestamp"):
                continue
            deadline = self._eviction_deadline(pod, taints)
            if deadline is None:
                continue
            left = (deadline - now()).total_seconds()
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            ns, pname = pod["metadata"]["namespace"], pod["metadata"]["name"]
            log.info("evicting %s/%s from tainted node %s", ns, pname, node["metadata"]["name"])
            await self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {ns}/{pname}")
            try:
                await self.client.delete(self.pods_res, ns, pname, uid=pod["metadata"]["uid"])
            except (NotFound, Conflict):
                pass
            except ApiError as err:
                log.warning("could not evict %s/%s: %s", ns, pname, err)
        return soonest

    @staticmethod
    def _eviction_deadline(pod: JSON, taints: list[JSON]) -> datetime | None:
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        deadline: datetime | None = None
        for taint in taints:
            added = parse_rfc3339(taint["timeAdded"]) if taint.get("timeAdded") else now()
            tol = tolerates(tolerations, taint)
            if tol is None:
                return added
            seconds = tol.get("tolerationSeconds")
            if seconds is None:
                continue  # tolerated forever
            when = added + timedelta(seconds=max(int(seconds), 0))
            deadline = when if deadline is None else min(deadline, when)
        return deadline
