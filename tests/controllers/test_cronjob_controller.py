"""The CronJob controller with an injected clock: firing, concurrency policies, history limits, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from test_job_helpers import Cluster, eventually, running

from nanokube.api.objects import deep_copy
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.cronjob import CronJobController
from nanokube.util.timeutil import parse_rfc3339, rfc3339

JSON = dict[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


def cronjob(name: str, schedule: str = "*/1 * * * *", **spec: Any) -> JSON:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "main", "image": "busybox"}]}}}}}}


class Fixture:
    def __init__(self, ic: InProcessCluster) -> None:
        self.c = Cluster(ic)
        self.clock = FakeClock()
        self.ctrl = CronJobController(self.c.client, clock=self.clock, default_zone=UTC)

    async def create(self, body: JSON) -> datetime:
        created = await self.c.client.create(self.c.cronjobs, "default", body)
        return parse_rfc3339(created["metadata"]["creationTimestamp"])

    async def tick(self, at: datetime) -> None:
        """Move the clock and have the controller look (as its timer would at that moment)."""
        self.clock.at = at
        self.ctrl.queue.add("default/" + self.name)
        await eventually(self._idle, what="queue drained")

    name = ""

    async def _idle(self) -> bool:
        return len(self.ctrl.queue) == 0 and not self.ctrl.queue._processing

    async def jobs(self) -> list[JSON]:
        listed = await self.c.client.list(self.c.jobs, "default")
        return sorted(listed.items, key=lambda j: j["metadata"]["name"])

    async def cron(self) -> JSON:
        return await self.c.client.get(self.c.cronjobs, "default", self.name)

    async def finish(self, job: JSON, kind: str = "Complete", at: datetime | None = None) -> None:
        stamp = rfc3339(at or self.clock.at)
        live = deep_copy(await self.c.client.get(self.c.jobs, "default", job["metadata"]["name"]))
        status = live.setdefault("status", {})
        status["startTime"] = status.get("startTime") or stamp
        if kind == "Complete":
            status["completionTime"] = stamp
            status["succeeded"] = 1
        status["conditions"] = [{"type": kind, "status": "True", "lastTransitionTime": stamp}]
        await self.c.client.update(self.c.jobs, "default", live, subresource="status")


def minute_after(t: datetime, minutes: int = 1, seconds: int = 5) -> datetime:
    base = t.replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    return base + timedelta(seconds=seconds)


async def test_fires_on_schedule() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "tick"
        async with running(f.ctrl):
            created = await f.create(cronjob("tick"))
            await f.tick(created + timedelta(seconds=1))
            assert await f.jobs() == []
            due = minute_after(created)
            await f.tick(due)
            jobs = await eventually(f.jobs, what="a job")
            scheduled = due.replace(second=0)
            job = jobs[0]
            assert job["metadata"]["name"] == f"tick-{int(scheduled.timestamp()) // 60}"
            assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
                scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert job["metadata"]["labels"]["app"] == "tick"
            owner = job["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "tick", True)
            status = (await f.cron())["status"]
            assert status["lastScheduleTime"] == rfc3339(scheduled)
            assert [(r["kind"], r["name"], r["uid"]) for r in status["active"]] == [
                ("Job", job["metadata"]["name"], job["metadata"]["uid"])]
            # Looking again within the same minute starts nothing new.
            await f.tick(due + timedelta(seconds=20))
            assert len(await f.jobs()) == 1
            await f.finish(job)
            await f.tick(due + timedelta(seconds=30))
            status = (await f.cron())["status"]
            assert "active" not in status and status["lastSuccessfulTime"] == rfc3339(due + timedelta(seconds=20))
            reasons = await f.c.event_reasons("tick")
            assert "SuccessfulCreate" in reasons and "SawCompletedJob" in reasons


async def test_forbid_skips_while_a_job_runs() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "solo"
        async with running(f.ctrl):
            created = await f.create(cronjob("solo", concurrencyPolicy="Forbid"))
            await f.tick(minute_after(created))
            assert len(await f.jobs()) == 1
            await f.tick(minute_after(created, 2))
            assert len(await f.jobs()) == 1
            assert "JobAlreadyActive" in await f.c.event_reasons("solo")
            await f.finish((await f.jobs())[0])
            await f.tick(minute_after(created, 3))
            assert len(await f.jobs()) == 2


async def test_replace_deletes_the_running_job() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "swap"
        async with running(f.ctrl):
            created = await f.create(cronjob("swap", concurrencyPolicy="Replace"))
            await f.tick(minute_after(created))
            first = (await f.jobs())[0]["metadata"]["name"]
            await f.tick(minute_after(created, 2))
            names = [j["metadata"]["name"] for j in await f.jobs()]
            assert first not in names and len(names) == 1
            active = (await f.cron())["status"]["active"]
            assert [r["name"] for r in active] == names
            assert "SuccessfulDelete" in await f.c.event_reasons("swap")


async def test_allow_runs_concurrently() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "many"
        async with running(f.ctrl):
            created = await f.create(cronjob("many"))
            await f.tick(minute_after(created))
            await f.tick(minute_after(created, 2))
            assert len(await f.jobs()) == 2
            assert len((await f.cron())["status"]["active"]) == 2


async def test_history_limits() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "hist"
        async with running(f.ctrl):
            created = await f.create(cronjob("hist", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1))
            for minute in (1, 2, 3, 4):
                await f.tick(minute_after(created, minute))
                newest = (await f.jobs())[-1]
                kind = "Complete" if minute % 2 else "Failed"
                await f.finish(newest, kind, at=minute_after(created, minute))
            await f.tick(minute_after(created, 4, 30))
            kinds = {}
            for job in await f.jobs():
                kinds[job["metadata"]["name"]] = job["status"]["conditions"][0]["type"]
            assert sorted(kinds.values()) == ["Complete", "Failed"]
            # The newest of each kind is kept.
            base = int(minute_after(created, 0, 0).timestamp()) // 60
            assert kinds == {f"hist-{base + 3}": "Complete", f"hist-{base + 4}": "Failed"}


async def test_starting_deadline() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "strict"
        async with running(f.ctrl):
            created = await f.create(cronjob("strict", startingDeadlineSeconds=10))
            await f.tick(minute_after(created, 1, 30))  # 30 s late: past the deadline
            assert await f.jobs() == []
            await f.tick(minute_after(created, 2, 5))  # 5 s late: fine
            assert len(await f.jobs()) == 1


async def test_too_many_missed_start_times() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "behind"
        async with running(f.ctrl):
            created = await f.create(cronjob("behind"))
            await f.tick(minute_after(created, 180))
            jobs = await f.jobs()
            assert len(jobs) == 1  # only the most recent missed time runs
            scheduled = minute_after(created, 180, 0)
            assert jobs[0]["metadata"]["name"] == f"behind-{int(scheduled.timestamp()) // 60}"
            assert "TooManyMissedTimes" in await f.c.event_reasons("behind")


async def test_suspended_cronjob_does_nothing() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "off"
        async with running(f.ctrl):
            created = await f.create(cronjob("off", suspend=True))
            await f.tick(minute_after(created, 3))
            assert await f.jobs() == []
            await f.c.client.patch(f.c.cronjobs, "default", "off", {"spec": {"suspend": False}})
            await f.tick(minute_after(created, 3, 10))
            assert len(await f.jobs()) == 1


async def test_time_zone() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "tokyo"
        async with running(f.ctrl):
            created = await f.create(cronjob("tokyo", "0 9 * * *", timeZone="Asia/Tokyo"))
            nine = created.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # 09:00 in Tokyo
            if nine <= created:
                nine += timedelta(days=1)
            await f.tick(nine - timedelta(minutes=1))
            assert await f.jobs() == []
            await f.tick(nine + timedelta(seconds=3))
            job = (await f.jobs())[0]
            stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            assert stamp.endswith("T09:00:00+09:00")
            assert job["metadata"]["name"] == f"tokyo-{int(nine.timestamp()) // 60}"


async def test_unexpected_and_missing_jobs() -> None:
    async with InProcessCluster() as ic:
        f = Fixture(ic)
        f.name = "odd"
        async with running(f.ctrl):
            created = await f.create(cronjob("odd", "0 0 1 1 *"))
            cron = await f.cron()
            # What `kubectl create job --from=cronjob/odd` makes: owned, but not in status.active.
            manual = deep_copy(cron["spec"]["jobTemplate"])
            manual.update(apiVersion="batch/v1", kind="Job")
            manual["metadata"] = {"name": "odd-manual", "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                                  "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "odd",
                                                       "uid": cron["metadata"]["uid"], "controller": True}]}
            await f.c.client.create(f.c.jobs, "default", manual)
            await f.tick(created + timedelta(seconds=5))
            assert "UnexpectedJob" in await f.c.event_reasons("odd")
            # An active reference to a Job that is gone is dropped.
            live = deep_copy(await f.cron())
            live["status"]["active"] = [{"kind": "Job", "namespace": "default", "name": "ghost", "uid": "nope",
                                         "apiVersion": "batch/v1"}]
            await f.c.client.update(f.c.cronjobs, "default", live, subresource="status")
            await f.tick(created + timedelta(seconds=6))
            assert "active" not in (await f.cron())["status"]
            assert "MissingJob" in await f.c.event_reasons("odd")
