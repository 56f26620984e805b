"""The Job controller's writes to Pods, with the Events kube's ``RealPodControl`` records.

``create`` makes a Pod from the Job's template (labels, annotations and finalizers copied, the controller
reference added, a generated name) and records ``SuccessfulCreate`` "Created pod: NAME" or ``FailedCreate``;
``delete`` records ``SuccessfulDelete`` "Deleted pod: NAME" or ``FailedDelete``; ``remove_finalizer`` takes
the tracking finalizer off with a strategic-merge patch, as kube does, so concurrent finalizers survive.
Every call reports failure by raising the client's ApiError; a Pod already gone counts as done.
"""

from __future__ import annotations

import logging
from typing import Any

from nanokube.api.errors import ApiError, NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.events import EventRecorder
from nanokube.client.interface import JSON, Client

from .pods import TRACKING_FINALIZER, has_tracking_finalizer, meta, owner_reference

log = logging.getLogger(__name__)


def pod_from_template(job: JSON, template: dict[str, Any], generate_name: str) -> JSON:
    tmeta = template.get("metadata") or {}
    metadata: dict[str, Any] = {
        "generateName": generate_name,
        "namespace": meta(job).get("namespace", ""),
        "ownerReferences": [owner_reference(job)],
    }
    for name in ("labels", "annotations"):
        if tmeta.get(name):
            metadata[name] = dict(tmeta[name])
    finalizers = list(tmeta.get("finalizers") or [])
    if finalizers:
        metadata["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": deep_copy(template.get("spec") or {})}


def namespace_terminating(err: ApiError) -> bool:
    """The write failed because its namespace is going away (kube's ``NamespaceTerminatingCause``)."""
    causes = (err.details or {}).get("causes") or []
    return any(cause.get("reason") == "NamespaceTerminating" for cause in causes)


class PodControl:
    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder
        pods = client.registry.get("", "v1", "pods")
        assert pods is not None
        self.pods = pods

    async def create(self, job: JSON, template: dict[str, Any], generate_name: str) -> JSON:
        pod = pod_from_template(job, template, generate_name)
        try:
            created = await self.client.create(self.pods, meta(job)["namespace"], pod)
        except ApiError as err:
            if not namespace_terminating(err):
                await self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {err}")
            raise
        await self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {meta(created)['name']}")
        return created

    async def delete(self, job: JSON, pod: JSON) -> None:
        name = meta(pod)["name"]
        try:
            await self.client.delete(self.pods, meta(pod)["namespace"], name)
        except NotFound:
            return
        except ApiError as err:
            await self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {err}")
            raise
        await self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def remove_finalizer(self, pod: JSON) -> None:
        if not has_tracking_finalizer(pod):
            return
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
        try:
            await self.client.patch(self.pods, meta(pod)["namespace"], meta(pod)["name"], patch,
                                    patch_type="strategic")
        except NotFound:
            return

    async def adopt(self, job: JSON, pod: JSON) -> JSON:
        """Make an orphan Pod the Job's own: controller reference and tracking finalizer (precondition on the
        cached resourceVersion, so a Pod that changed meanwhile is looked at again)."""
        body = deep_copy(pod)
        bmeta = body["metadata"]
        bmeta["ownerReferences"] = [*list(bmeta.get("ownerReferences") or []), owner_reference(job)]
        if TRACKING_FINALIZER not in (bmeta.get("finalizers") or []):
            bmeta["finalizers"] = [*list(bmeta.get("finalizers") or []), TRACKING_FINALIZER]
        return await self.client.update(self.pods, bmeta["namespace"], body)

    async def release(self, job: JSON, pod: JSON) -> None:
        """Drop the Job's controller reference from a Pod its selector no longer matches."""
        body = deep_copy(pod)
        refs = [r for r in body["metadata"].get("ownerReferences") or [] if r.get("uid") != meta(job).get("uid")]
        if refs:
            body["metadata"]["ownerReferences"] = refs
        else:
            body["metadata"].pop("ownerReferences", None)
        try:
            await self.client.update(self.pods, body["metadata"]["namespace"], body)
        except NotFound:
            return
