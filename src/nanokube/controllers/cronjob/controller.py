"""The CronJob controller: Jobs on a schedule (``pkg/controller/cronjob/cronjob_controllerv2.go``).

A sync of one CronJob first deletes finished Jobs beyond ``successfulJobsHistoryLimit`` and
``failedJobsHistoryLimit`` (oldest first), then reconciles ``status.active`` with the Jobs it owns
(finished ones leave it with ``SawCompletedJob``, vanished ones with ``MissingJob``; ``lastSuccessfulTime``
follows the latest completion), and then, unless suspended or being deleted, starts the most recent missed
activation: not if it is older than ``startingDeadlineSeconds`` (``MissSchedule``), not twice, not while
another Job runs under ``Forbid``, after deleting the running ones under ``Replace``. It returns the delay to
the next activation, so the work queue wakes it then.

Time comes from ``self.now()`` (inject ``clock`` in tests). A schedule is read in ``spec.timeZone`` when
set, else in ``default_zone`` (this process's local zone, as kube-controller-manager reads its own).
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable, Hashable
from datetime import datetime, tzinfo
from typing import Any

from nanokube.api.errors import AlreadyExists, ApiError, InternalError, NotFound
from nanokube.api.objects import deep_copy
from nanokube.client.events import EventRecorder
from nanokube.client.informer import Informer, object_key
from nanokube.client.interface import JSON, Client
from nanokube.util import timeutil

from ..base import Controller
from . import jobs as cj_jobs
from .jobs import meta
from .schedule import (
    Missed,
    Schedule,
    ScheduleError,
    local_zone,
    most_recent_schedule_time,
    next_schedule_delay,
    parse_schedule,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, client: Client, *, clock: Clock | None = None, default_zone: tzinfo | None = None) -> None:
        super().__init__(client)
        self.now = clock or timeutil.now
        self.default_zone = default_zone or local_zone()
        cronjobs = client.registry.get("batch", "v1", "cronjobs")
        jobs = client.registry.get("batch", "v1", "jobs")
        assert cronjobs is not None and jobs is not None
        self.cronjobs_resource, self.jobs_resource = cronjobs, jobs
        self.recorder = EventRecorder(client, "cronjob-controller")
        self._children: dict[str, set[str]] = {}  # cronjob key -> keys of jobs naming it as controller
        self.cronjobs = self.informer(Informer(client, cronjobs))
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs = self.informer(Informer(client, jobs))
        self.jobs.add_handler(self._on_job)

    # -- events -----------------------------------------------------------------------------------------
    def _on_cronjob(self, kind: str, cronjob: JSON, old: JSON | None) -> None:
        key = object_key(cronjob)
        if kind != "MODIFIED" or old is None:
            self.queue.add(key)
            return
        spec, old_spec = cronjob.get("spec") or {}, old.get("spec") or {}
        if (spec.get("schedule"), spec.get("timeZone")) == (old_spec.get("schedule"), old_spec.get("timeZone")):
            self.queue.add(key)
            return
        try:
            schedule = self.schedule_of(cronjob)
        except ScheduleError:
            self.queue.add(key)  # the sync records why it cannot run
            return
        delay = next_schedule_delay(schedule, self._earliest(cronjob), self.now())
        if delay is not None:
            self.queue.add_after(key, delay)

    def _on_job(self, kind: str, job: JSON, old: JSON | None) -> None:
        key = object_key(job)
        for previous in (old, job if kind == "DELETED" else None):
            owner = _owner_key(previous) if previous is not None else None
            if owner is not None:
                self._children.get(owner, set()).discard(key)
                self.queue.add(owner)
        if kind == "DELETED":
            return
        owner = _owner_key(job)
        if owner is not None:
            self._children.setdefault(owner, set()).add(key)
            if self.cronjobs.get(owner) is not None:
                self.queue.add(owner)

    # -- schedule ---------------------------------------------------------------------------------------
    def zone_of(self, cronjob: JSON) -> tzinfo:
        name = (cronjob.get("spec") or {}).get("timeZone")
        return zoneinfo.ZoneInfo(name) if name else self.default_zone

    def schedule_of(self, cronjob: JSON) -> Schedule:
        text = str((cronjob.get("spec") or {}).get("schedule") or "")
        try:
            zone = self.zone_of(cronjob) if "TZ" not in text else self.default_zone
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = self.default_zone
        return parse_schedule(text, zone)

    @staticmethod
    def _earliest(cronjob: JSON) -> datetime:
        st = cronjob.get("status") or {}
        stamp = st.get("lastScheduleTime") or meta(cronjob).get("creationTimestamp")
        return timeutil.parse_rfc3339(stamp) if stamp else timeutil.now()

    # -- sync -------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> float | None:
        cached = self.cronjobs.get(str(key))
        if cached is None:
            return None
        cronjob: JSON = deep_copy(cached)
        cronjob.setdefault("status", {})
        name = meta(cronjob)["name"]
        children = [j for k in sorted(self._children.get(str(key), ())) if (j := self.jobs.get(k)) is not None
                    and (cj_jobs.meta(j).get("namespace") == meta(cronjob).get("namespace"))
                    and _owner_name(j) == name]
        changed = await self._cleanup_finished(cronjob, children)
        error: BaseException | None = None
        requeue: float | None = None
        try:
            cronjob, requeue, synced = await self._sync_cronjob(cronjob, children)
            changed = changed or synced
        except ApiError as err:
            error = err
        if changed:
            await self.client.update(self.cronjobs_resource, meta(cronjob)["namespace"], cronjob,
                                     subresource="status")
        if error is not None:
            raise error
        return requeue

    async def _cleanup_finished(self, cronjob: JSON, children: list[JSON]) -> bool:
        spec = cronjob.get("spec") or {}
        changed = False
        for kind, limit_name in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_name)
            if limit is None:
                continue
            finished = sorted((j for j in children if cj_jobs.finished_type(j) == kind), key=cj_jobs.start_order)
            for job in finished[:max(len(finished) - int(limit), 0)]:
                changed = await self._delete_job(cronjob, job) or changed
        return changed

    async def _delete_job(self, cronjob: JSON, job: JSON) -> bool:
        name = cj_jobs.meta(job)["name"]
        try:
            await self.client.delete(self.jobs_resource, cj_jobs.meta(job)["namespace"], name, propagation="Background")
        except NotFound:
            pass
        except ApiError as err:
            await self.recorder.event(cronjob, "Warning", "FailedDelete", f"Deleted job: {err}")
            return False
        cj_jobs.drop_active(cronjob, cj_jobs.meta(job).get("uid", ""))
        await self.recorder.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _reconcile_active(self, cronjob: JSON, children: list[JSON]) -> tuple[JSON, bool]:
        changed = False
        st = cronjob["status"]
        for job in children:
            jmeta = cj_jobs.meta(job)
            found = cj_jobs.in_active(cronjob, jmeta.get("uid", ""))
            finished = cj_jobs.finished_type(job)
            if not found and finished is None:
                fresh = await self.client.get(self.cronjobs_resource, meta(cronjob)["namespace"], meta(cronjob)["name"])
                if cj_jobs.in_active(fresh, jmeta.get("uid", "")):
                    cronjob = deep_copy(fresh)
                    cronjob.setdefault("status", {})
                    st = cronjob["status"]
                    continue
                await self.recorder.event(cronjob, "Warning", "UnexpectedJob",
                                          f"Saw a job that the controller did not create or forgot: {jmeta['name']}")
            elif found and finished is not None:
                cj_jobs.drop_active(cronjob, jmeta.get("uid", ""))
                await self.recorder.event(cronjob, "Normal", "SawCompletedJob",
                                          f"Saw completed job: {jmeta['name']}, status: {finished}")
                changed = True
            elif finished == "Complete":
                completed = (job.get("status") or {}).get("completionTime")
                last = st.get("lastSuccessfulTime")
                if completed and (not last or timeutil.parse_rfc3339(completed) > timeutil.parse_rfc3339(last)):
                    st["lastSuccessfulTime"] = completed
                    changed = True
        uids = {cj_jobs.meta(j).get("uid") for j in children}
        for ref in cj_jobs.active_refs(cronjob):
            if ref.get("uid") in uids:
                continue
            try:
                await self.client.get(self.jobs_resource, ref.get("namespace", ""), ref.get("name", ""))
            except NotFound:
                await self.recorder.event(cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                cj_jobs.drop_active(cronjob, ref.get("uid", ""))
                changed = True
        return cronjob, changed

    async def _sync_cronjob(self, cronjob: JSON, children: list[JSON]) -> tuple[JSON, float | None, bool]:
        """Returns the (possibly refreshed) CronJob, the requeue delay, and whether its status changed."""
        cronjob, changed = await self._reconcile_active(cronjob, children)
        spec = cronjob.get("spec") or {}
        if meta(cronjob).get("deletionTimestamp"):
            return cronjob, None, changed
        time_zone = spec.get("timeZone")
        if time_zone:
            try:
                zoneinfo.ZoneInfo(time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                await self.recorder.event(cronjob, "Warning", "UnknownTimeZone",
                                          f'invalid timeZone: "{time_zone}": unknown time zone {time_zone}')
                return cronjob, None, changed
        if spec.get("suspend") is True:
            return cronjob, None, changed
        schedule_text = str(spec.get("schedule") or "")
        if "TZ" in schedule_text:
            await self.recorder.event(
                cronjob, "Warning", "UnsupportedSchedule",
                f'CRON_TZ or TZ used in schedule "{schedule_text}" is not officially supported, see '
                "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")
        try:
            schedule = self.schedule_of(cronjob)
        except ScheduleError as err:
            await self.recorder.event(cronjob, "Warning", "UnparseableSchedule",
                                      f'unparseable schedule: "{schedule_text}" : {err}')
            return cronjob, None, changed
        now = self.now()
        try:
            scheduled = await self._due_time(cronjob, schedule, now)
        except ScheduleError as err:
            await self.recorder.event(cronjob, "Warning", "InvalidSchedule",
                                      f"invalid schedule: {schedule_text} : {err}")
            return cronjob, None, changed
        requeue = next_schedule_delay(schedule, self._earliest(cronjob), now)
        if scheduled is None:
            return cronjob, requeue, changed
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled.timestamp() + int(deadline) < now.timestamp():
            await self.recorder.event(cronjob, "Warning", "MissSchedule",
                                      f"Missed scheduled time to start a job: {cj_jobs.rfc1123z(scheduled)}")
            return cronjob, requeue, changed
        name = cj_jobs.job_name(meta(cronjob)["name"], scheduled)
        last = cronjob["status"].get("lastScheduleTime")
        if any(ref.get("name") == name for ref in cj_jobs.active_refs(cronjob)) or (
                last and timeutil.parse_rfc3339(last) == scheduled):
            return cronjob, requeue, changed
        active = cj_jobs.active_refs(cronjob)
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            await self.recorder.event(cronjob, "Normal", "JobAlreadyActive",
                                      "Not starting job because prior execution is running and concurrency policy is "
                                      "Forbid")
            return cronjob, requeue, changed
        if policy == "Replace":
            for ref in active:
                changed = await self._replace(cronjob, ref) or changed
        created = await self._create_job(cronjob, scheduled)
        if created is None:
            return cronjob, requeue, changed
        cronjob["status"]["active"] = [*cj_jobs.active_refs(cronjob), cj_jobs.reference(created)]
        cronjob["status"]["lastScheduleTime"] = timeutil.rfc3339(scheduled)
        return cronjob, next_schedule_delay(schedule, scheduled, now), True

    async def _due_time(self, cronjob: JSON, schedule: Schedule, now: datetime) -> datetime | None:
        deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
        _, most_recent, missed = most_recent_schedule_time(
            schedule, self._earliest(cronjob), now, None if deadline is None else int(deadline))
        if most_recent is None or most_recent > now:
            return None
        if missed is Missed.MANY:
            await self.recorder.event(cronjob, "Warning", "TooManyMissedTimes",
                                      "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                      "or check clock skew")
        return most_recent

    async def _replace(self, cronjob: JSON, ref: dict[str, Any]) -> bool:
        try:
            job = await self.client.get(self.jobs_resource, ref.get("namespace", ""), ref.get("name", ""))
        except ApiError as err:
            await self.recorder.event(cronjob, "Warning", "FailedGet", f"Get job: {err}")
            raise
        if not await self._delete_job(cronjob, job):
            raise InternalError(f"could not replace job {ref.get('namespace')}/{ref.get('name')}")
        return True

    async def _create_job(self, cronjob: JSON, scheduled: datetime) -> JSON | None:
        """Create the Job for ``scheduled``; None when one exists that this CronJob already tracks or that
        another owner made."""
        time_zone = (cronjob.get("spec") or {}).get("timeZone")
        body = cj_jobs.job_from_template(cronjob, scheduled, zoneinfo.ZoneInfo(time_zone) if time_zone else None)
        namespace = meta(cronjob)["namespace"]
        try:
            created = await self.client.create(self.jobs_resource, namespace, body)
        except AlreadyExists:
            existing = await self.client.get(self.jobs_resource, namespace, body["metadata"]["name"])
            owner = next((r for r in cj_jobs.meta(existing).get("ownerReferences") or [] if r.get("controller")), None)
            if owner is None or owner.get("uid") != meta(cronjob).get("uid"):
                return None
            if cj_jobs.in_active(cronjob, cj_jobs.meta(existing).get("uid", "")):
                return None
            log.info("cronjob %s: job %s already exists", object_key(cronjob), body["metadata"]["name"])
            return existing
        except ApiError as err:
            await self.recorder.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {err}")
            raise
        await self.recorder.event(cronjob, "Normal", "SuccessfulCreate", f"Created job {cj_jobs.meta(created)['name']}")
        return created


def _owner_name(job: JSON) -> str | None:
    for ref in cj_jobs.meta(job).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "CronJob":
            return str(ref.get("name"))
    return None


def _owner_key(job: JSON) -> str | None:
    name = _owner_name(job)
    return f"{cj_jobs.meta(job).get('namespace', '')}/{name}" if name else None
