"""The TTL-after-finished controller: finished Jobs with ``spec.ttlSecondsAfterFinished`` are deleted once
that many seconds have passed since they finished (``pkg/controller/ttlafterfinished``).

The finish time is the ``lastTransitionTime`` of the Job's true ``Complete`` or ``Failed`` condition. A Job
not yet due is looked at again when it will be. Before deleting, the Job is read fresh from the server and
checked again (its TTL may have changed), then deleted with ``propagationPolicy: Foreground`` and a uid
precondition, so its Pods go first and a new Job of the same name is never hit.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from datetime import timedelta

from nanokube.api.errors import Conflict, NotFound
from nanokube.client.informer import Informer
from nanokube.client.interface import JSON, Client
from nanokube.util import timeutil

from ..base import Controller
from . import status
from .state import Clock, job_key, spec

log = logging.getLogger(__name__)


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"

    def __init__(self, client: Client, *, clock: Clock | None = None) -> None:
        super().__init__(client)
        self.now = clock or timeutil.now
        jobs = client.registry.get("batch", "v1", "jobs")
        assert jobs is not None
        self.jobs_resource = jobs
        self.jobs = self.informer(Informer(client, jobs))
        self.jobs.add_handler(self._on_job)

    def _on_job(self, kind: str, job: JSON, old: JSON | None) -> None:
        if kind != "DELETED" and not (job.get("metadata") or {}).get("deletionTimestamp") and _needs_cleanup(job):
            self.queue.add(job_key(job))

    def time_left(self, job: JSON) -> float | None:
        """Seconds until the Job is due (<= 0: due now); None when it is not to be cleaned up."""
        if (job.get("metadata") or {}).get("deletionTimestamp") or not _needs_cleanup(job):
            return None
        finished = _finish_time(job)
        if finished is None:
            return None
        expires = timeutil.parse_rfc3339(finished) + timedelta(seconds=int(spec(job)["ttlSecondsAfterFinished"]))
        return (expires - self.now()).total_seconds()

    async def sync(self, key: Hashable) -> float | None:
        job = self.jobs.get(str(key))
        if job is None:
            return None
        left = self.time_left(job)
        if left is None:
            return None
        if left > 0:
            return left
        namespace, name = str(key).split("/", 1)
        try:
            fresh = await self.client.get(self.jobs_resource, namespace, name)
        except NotFound:
            return None
        left = self.time_left(fresh)
        if left is None:
            return None
        if left > 0:
            return left
        log.info("deleting job %s: its TTL after finishing has passed", key)
        try:
            await self.client.delete(self.jobs_resource, namespace, name, propagation="Foreground",
                                     uid=(fresh.get("metadata") or {}).get("uid"))
        except (NotFound, Conflict):
            return None
        return None


def _needs_cleanup(job: JSON) -> bool:
    return spec(job).get("ttlSecondsAfterFinished") is not None and status.is_finished(job)


def _finish_time(job: JSON) -> str | None:
    for cond in status.conditions(job):
        if cond.get("type") in (status.COMPLETE, status.FAILED) and cond.get("status") == "True":
            stamp = cond.get("lastTransitionTime")
            return str(stamp) if stamp else None
    return None
