"""Helpers for Job and CronJob controller tests: manifests, a stand-in kubelet that writes Pod status, and
polling with a bounded deadline. (Named ``test_*`` to sit with the tests it serves; it holds no tests.)"""

from __future__ import annotations

from typing import Any, TypeVar

from harness import eventually as eventually  # re-exported for the tests
from harness import running as running

from nanokube.api.objects import deep_copy
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.util.timeutil import rfc3339

T = TypeVar("T")
JSON = dict[str, Any]


def job_manifest(name: str, *, image: str = "busybox", restart: str = "Never", **spec: Any) -> JSON:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {**spec, "template": {"spec": {"restartPolicy": restart,
                                               "containers": [{"name": "main", "image": image}]}}},
    }


class Cluster:
    """The resources tests touch, and a kubelet stand-in writing Pod status."""

    def __init__(self, cluster: InProcessCluster) -> None:
        self.client = cluster.client
        self.jobs = cluster.resource("batch", "v1", "jobs")
        self.cronjobs = cluster.resource("batch", "v1", "cronjobs")
        self.pods = cluster.resource("", "v1", "pods")
        self.events = cluster.resource("", "v1", "events")

    async def job(self, name: str, ns: str = "default") -> JSON:
        return await self.client.get(self.jobs, ns, name)

    async def job_pods(self, name: str, ns: str = "default") -> list[JSON]:
        listed = await self.client.list(self.pods, ns, label_selector=f"batch.kubernetes.io/job-name={name}")
        return sorted(listed.items, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])

    async def active_pods(self, name: str, ns: str = "default") -> list[JSON]:
        return [p for p in await self.job_pods(name, ns)
                if p["status"].get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]

    async def set_pod_status(self, pod: JSON, status: JSON) -> JSON:
        live = await self.client.get(self.pods, pod["metadata"]["namespace"], pod["metadata"]["name"])
        body = deep_copy(live)
        body["status"] = {**body.get("status", {}), **status}
        return await self.client.update(self.pods, body["metadata"]["namespace"], body, subresource="status")

    async def run_pod(self, pod: JSON) -> JSON:
        now = rfc3339()
        return await self.set_pod_status(pod, {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": True,
                                   "restartCount": 0, "state": {"running": {"startedAt": now}}}],
        })

    async def finish_pod(self, pod: JSON, exit_code: int = 0, *, conditions: list[JSON] | None = None) -> JSON:
        """Play kubelet: the container exited with ``exit_code``; the Pod Succeeded (0) or Failed."""
        now = rfc3339()
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                      "startedAt": now, "finishedAt": now}
        return await self.set_pod_status(pod, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now,
                            "reason": "PodCompleted"}, *(conditions or [])],
            "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": False,
                                   "restartCount": 0, "state": {"terminated": terminated}}],
        })

    async def condition(self, name: str, kind: str, ns: str = "default") -> JSON | None:
        job = await self.job(name, ns)
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond["type"] == kind and cond["status"] == "True":
                return dict(cond)
        return None

    async def event_reasons(self, name: str, ns: str = "default") -> list[str]:
        listed = await self.client.list(self.events, ns)
        return [e["reason"] for e in listed.items if e["involvedObject"].get("name") == name]
