"""Helpers for ReplicaSet and Deployment controller tests: manifests, a stand-in kubelet that marks pods Running
and Ready, and polling with a bounded deadline. (Named ``test_*`` to sit with the tests it serves; it holds no
tests.)"""

from __future__ import annotations

from typing import Any, TypeVar

from harness import eventually as eventually  # re-exported for the tests
from harness import running as running

from nanokube.api.labels import parse_selector
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.util.timeutil import rfc3339

T = TypeVar("T")
JSON = dict[str, Any]
NS = "default"


def template(app: str = "web", image: str = "nginx:1.25") -> JSON:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def replicaset_manifest(name: str, replicas: int, app: str = "web", **spec: Any) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": template(app), **spec}}


def deployment_manifest(name: str, replicas: int, app: str = "web", image: str = "nginx:1.25",
                        **spec: Any) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": template(app, image), **spec}}


class Kube:
    """An in-process cluster with the resources these tests use and a hand-played kubelet."""

    def __init__(self, cluster: InProcessCluster) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.pods = cluster.resource("", "v1", "pods")
        self.replicasets = cluster.resource("apps", "v1", "replicasets")
        self.rcs = cluster.resource("", "v1", "replicationcontrollers")
        self.deployments = cluster.resource("apps", "v1", "deployments")
        self.events = cluster.resource("", "v1", "events")

    async def list_pods(self, selector: str = "", *, active: bool = True) -> list[JSON]:
        items = (await self.client.list(self.pods, NS, label_selector=selector)).items
        if active:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")
                     and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return items

    async def list_rs(self, selector: str = "") -> list[JSON]:
        return (await self.client.list(self.replicasets, NS, label_selector=selector)).items

    async def get(self, resource_name: str, name: str) -> JSON:
        return await self.client.get(getattr(self, resource_name), NS, name)

    async def set_ready(self, pod: JSON, ready: bool = True) -> None:
        """What a kubelet writes once the pod's containers run (and pass, or fail, readiness)."""
        status = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339()}]}
        await self.client.patch(self.pods, NS, pod["metadata"]["name"], {"status": status}, subresource="status")

    async def mark_ready(self, selector: str = "") -> int:
        """Mark every active, not yet ready pod matching ``selector`` Running and Ready; return how many."""
        count = 0
        for pod in await self.list_pods(selector):
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                await self.set_ready(pod)
                count += 1
        return count

    async def events_for(self, name: str) -> list[str]:
        items = (await self.client.list(self.events, NS)).items
        return [e["message"] for e in sorted(items, key=lambda e: e["metadata"].get("creationTimestamp", ""))
                if e["involvedObject"].get("name") == name]


def matches(selector: str, labels: dict[str, str]) -> bool:
    return parse_selector(selector).matches(labels)


def rollout_status(d: JSON) -> tuple[str, bool]:
    """What ``kubectl rollout status`` prints for this Deployment, and whether it is done (its
    ``DeploymentStatusViewer``, restated); raises on ProgressDeadlineExceeded as kubectl does."""
    name, status = d["metadata"]["name"], d.get("status") or {}
    if d["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in status.get("conditions") or []:
        if cond["type"] == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise RuntimeError(f'deployment "{name}" exceeded its progress deadline')
    want, updated = d["spec"]["replicas"], status.get("updatedReplicas", 0)
    total, available = status.get("replicas", 0), status.get("availableReplicas", 0)
    if updated < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} new replicas have '
                "been updated..."), False
    if total > updated:
        return f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are pending termination...', False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are '
                "available..."), False
    return f'deployment "{name}" successfully rolled out', True


def condition(obj: JSON, kind: str) -> JSON | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)
