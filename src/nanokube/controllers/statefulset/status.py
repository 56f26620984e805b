"""A StatefulSet's ``status``: what ``kubectl rollout status statefulset/x`` and ``kubectl get sts`` read.

``replicas`` counts created Pods, ``readyReplicas`` Running and Ready ones, ``availableReplicas`` those ready for
``minReadySeconds``; ``currentReplicas``/``updatedReplicas`` count Pods (not being deleted) labelled with the
current/update revision. Once a RollingUpdate has every wanted Pod updated and ready, the update revision becomes
the current one (``completeRollingUpdate``). The status is written only when it differs from the stored one, and
a write that meets a newer object is retried on that object.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nanokube.api.errors import Conflict
from nanokube.api.objects import deep_copy
from nanokube.api.registry import Resource
from nanokube.client.interface import JSON, Client

from .identity import (
    is_available,
    is_created,
    is_running_and_ready,
    is_terminating,
    replicas,
    revision_of,
    spec,
)

COUNTS = ("replicas", "readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas")
_COMPARED = (*COUNTS, "currentRevision", "updateRevision")
_WRITE_ATTEMPTS = 5


def new_status(sts: JSON, current_revision: str, update_revision: str, collision_count: int) -> JSON:
    return {"observedGeneration": sts["metadata"].get("generation", 0), "replicas": 0,
            "currentRevision": current_revision, "updateRevision": update_revision,
            "collisionCount": collision_count}


def count(status: JSON, pods: Iterable[JSON], min_ready: int, now: datetime) -> None:
    """Set the replica counts of ``status`` from ``pods`` (``updateStatus``)."""
    counts = dict.fromkeys(COUNTS, 0)
    for pod in pods:
        created = is_created(pod)
        counts["replicas"] += created
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            counts["availableReplicas"] += is_available(pod, min_ready, now)
        if created and not is_terminating(pod):
            revision = revision_of(pod)
            counts["currentReplicas"] += revision == status["currentRevision"]
            counts["updatedReplicas"] += revision == status["updateRevision"]
    status.update(counts)


def complete_rolling_update(sts: JSON, status: JSON) -> None:
    """Every wanted Pod is updated and ready: the update revision is now the current one."""
    want = replicas(sts)
    if ((spec(sts).get("updateStrategy") or {}).get("type") == "RollingUpdate"
            and status["updatedReplicas"] == want and status["readyReplicas"] == want
            and status["replicas"] == want):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


def inconsistent(sts: JSON, status: JSON) -> bool:
    """The computed status says something the stored one does not (``inconsistentStatus``)."""
    stored = sts.get("status") or {}
    if status.get("observedGeneration", 0) > int(stored.get("observedGeneration") or 0):
        return True
    if int(stored.get("collisionCount") or 0) != status.get("collisionCount", 0):
        return True
    return any((stored.get(k) or (0 if k in COUNTS else "")) != status.get(k) for k in _COMPARED)


def wire_form(sts: JSON, status: JSON) -> JSON:
    """The status as kube serializes it: zero counts and empty revisions omitted (``omitempty``), ``replicas``
    and ``availableReplicas`` always present, and the stored conditions kept."""
    body = {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount")}
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        body["conditions"] = deep_copy(conditions)
    return body


async def write_status(client: Client, resource: Resource, sts: JSON, status: JSON) -> JSON:
    """Store ``status`` on the set, retrying on a fresher copy when the cached one is stale."""
    meta = sts["metadata"]
    body = deep_copy(sts)
    for attempt in range(_WRITE_ATTEMPTS):
        body["status"] = wire_form(body, status)
        try:
            return await client.update(resource, meta.get("namespace", ""), body, subresource="status")
        except Conflict:
            if attempt + 1 == _WRITE_ATTEMPTS:
                raise
            body = deep_copy(await client.get(resource, meta.get("namespace", ""), meta["name"]))
            if body["metadata"].get("uid") != meta.get("uid"):
                return body  # a new set of the same name: its own sync writes its status
    return body
