"""Helpers for the StatefulSet controller tests: manifests, a hand-played kubelet (and scheduler), polling with a
bounded deadline, a watcher that checks two Pods of one name never coexist, and kubectl's reading of a
StatefulSet's status. (Named ``test_*`` to sit with the tests it serves; it holds no tests.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from harness import eventually as eventually  # re-exported for the tests
from harness import running as running

from nanokube.api.errors import Conflict, NotFound
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.util.timeutil import rfc3339

T = TypeVar("T")
JSON = dict[str, Any]
NS = "default"


def template(image: str = "nginx:1.25", app: str = "nginx") -> JSON:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "nginx", "image": image,
                                     "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}}


def claim_template(name: str = "www") -> JSON:
    return {"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def sts_manifest(name: str = "web", replicas: int = 3, *, image: str = "nginx:1.25", claims: bool = True,
                 app: str = "nginx", **spec: Any) -> JSON:
    """The docs' ``web`` StatefulSet: nginx behind the headless Service ``nginx``, a ``www`` claim per Pod."""
    body: JSON = {"serviceName": "nginx", "replicas": replicas, "selector": {"matchLabels": {"app": app}},
                  "template": template(image, app), **spec}
    if claims:
        body["volumeClaimTemplates"] = [claim_template()]
    else:
        body["template"]["spec"]["containers"][0].pop("volumeMounts")
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": body}


class Kube:
    """An in-process cluster with the resources these tests use, and a kubelet played by hand."""

    def __init__(self, cluster: InProcessCluster) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.pods = cluster.resource("", "v1", "pods")
        self.pvcs = cluster.resource("", "v1", "persistentvolumeclaims")
        self.sets = cluster.resource("apps", "v1", "statefulsets")
        self.revisions = cluster.resource("apps", "v1", "controllerrevisions")
        self.events = cluster.resource("", "v1", "events")
        self.nodes = cluster.resource("", "v1", "nodes")

    async def create_set(self, manifest: JSON) -> JSON:
        return await self.client.create(self.sets, NS, manifest)

    async def patch_set(self, name: str, patch: JSON) -> JSON:
        return await self.client.patch(self.sets, NS, name, patch)

    async def get_set(self, name: str = "web") -> JSON:
        return await self.client.get(self.sets, NS, name)

    async def pod_map(self) -> dict[str, JSON]:
        return {p["metadata"]["name"]: p for p in (await self.client.list(self.pods, NS)).items}

    async def names(self) -> list[str]:
        return sorted(await self.pod_map())

    async def claim_map(self) -> dict[str, JSON]:
        return {c["metadata"]["name"]: c for c in (await self.client.list(self.pvcs, NS)).items}

    async def revision_list(self) -> list[JSON]:
        items = (await self.client.list(self.revisions, NS)).items
        return sorted(items, key=lambda r: r["revision"])

    async def add_node(self, name: str = "node-1") -> None:
        await self.client.create(self.nodes, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    # -- the kubelet's (and scheduler's) part ------------------------------------------------------------
    async def bind(self, name: str, node: str = "node-1") -> None:
        """Place a Pod on a node: from now on deleting it is graceful, as on a real cluster."""
        await self.client.bind(NS, name, node)

    async def set_ready(self, name: str, ready: bool = True) -> None:
        status = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339()}]}
        await self.client.patch(self.pods, NS, name, {"status": status}, subresource="status")

    async def set_phase(self, name: str, phase: str) -> None:
        status = {"phase": phase, "conditions": [{"type": "Ready", "status": "False",
                                                  "lastTransitionTime": rfc3339()}]}
        await self.client.patch(self.pods, NS, name, {"status": status}, subresource="status")

    async def finish_deletion(self, name: str) -> None:
        """What the kubelet does once a terminating Pod's containers stopped: delete it for good."""
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(self.pods, NS, name, grace_period_seconds=0)

    async def mark_ready(self) -> int:
        """Mark every Pod that is not terminating and not yet ready Running and Ready; return how many."""
        count = 0
        for name, pod in (await self.pod_map()).items():
            if pod["metadata"].get("deletionTimestamp") or is_ready(pod):
                continue
            with contextlib.suppress(NotFound, Conflict):
                await self.set_ready(name)
                count += 1
        return count

    @contextlib.asynccontextmanager
    async def kubelet(self, *, bind: bool = False) -> AsyncIterator[None]:
        """A stand-in kubelet in the background: every Pod becomes Running and Ready, terminating Pods finish."""
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                for name, pod in (await self.pod_map()).items():
                    with contextlib.suppress(NotFound, Conflict):
                        if pod["metadata"].get("deletionTimestamp"):
                            await self.finish_deletion(name)
                        elif bind and not pod["spec"].get("nodeName"):
                            await self.bind(name)
                        elif not is_ready(pod):
                            await self.set_ready(name)
                await asyncio.sleep(0.01)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            stop.set()
            await task

    async def event_messages(self, name: str = "web") -> list[str]:
        items = (await self.client.list(self.events, NS)).items
        return [e["message"] for e in sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))
                if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "StatefulSet"]


def is_ready(pod: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class TwinWatch:
    """Watches Pods and records any moment at which two Pods of one name existed (a new uid before the DELETED
    of the previous one), and every uid each name had, in order."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.alive: dict[str, str] = {}
        self.history: dict[str, list[str]] = {}
        self.twins: list[str] = []
        self.deleted: list[str] = []  # names, in the order their Pods went
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for event in self.kube.client.watch(self.kube.pods, NS):
            meta = event.object["metadata"]
            name, uid = meta["name"], meta["uid"]
            if event.type == "DELETED":
                self.deleted.append(name)
                if self.alive.get(name) == uid:
                    del self.alive[name]
                continue
            current = self.alive.get(name)
            if current is not None and current != uid:
                self.twins.append(name)
            if current != uid:
                self.history.setdefault(name, []).append(uid)
            self.alive[name] = uid

    async def __aenter__(self) -> TwinWatch:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def rollout_status(sts: JSON) -> tuple[str, bool]:
    """What ``kubectl rollout status statefulset/NAME`` prints for ``sts`` and whether it is done
    (kubectl's ``StatefulSetStatusViewer``)."""
    spec, status, meta = sts["spec"], sts.get("status") or {}, sts["metadata"]
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        raise ValueError("rollout status is only available for RollingUpdate strategy type")
    observed = int(status.get("observedGeneration") or 0)
    if observed == 0 or meta.get("generation", 0) > observed:
        return "Waiting for statefulset spec update to be observed...\n", False
    replicas = spec.get("replicas")
    ready = int(status.get("readyReplicas") or 0)
    if replicas is not None and ready < replicas:
        return f"Waiting for {replicas - ready} pods to be ready...\n", False
    updated = int(status.get("updatedReplicas") or 0)
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        partition = rolling.get("partition")
        if replicas is not None and partition is not None and updated < replicas - partition:
            return (f"Waiting for partitioned roll out to finish: {updated} out of {replicas - partition} "
                    "new pods have been updated...\n", False)
        return f"partitioned roll out complete: {updated} new pods have been updated...\n", True
    if status.get("updateRevision") != status.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete {updated} pods at revision "
                f"{status.get('updateRevision')}...\n", False)
    return (f"statefulset rolling update complete {int(status.get('currentReplicas') or 0)} pods at revision "
            f"{status.get('currentRevision')}...\n", True)
