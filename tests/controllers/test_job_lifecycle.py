"""Jobs that end early or pause: deadlines, pod failure policies, suspend/resume, per-index back-off, success
policies, TTL after finishing, and deletion (the tracking finalizer must never keep a Pod alive)."""

from __future__ import annotations

from datetime import timedelta

from test_job_controller import FAST, Clock, _n_active, _settle
from test_job_helpers import Cluster, eventually, job_manifest, running

from nanokube.api.errors import NotFound
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.gc import GarbageCollector
from nanokube.controllers.job import JobController, TTLAfterFinishedController


async def test_active_deadline_fails_the_job() -> None:
    clock = Clock()
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        ctrl = JobController(c.client, settings=FAST, clock=clock)
        async with running(ctrl):
            await c.client.create(c.jobs, "default", job_manifest("late", activeDeadlineSeconds=30, parallelism=2,
                                                                  completions=2))
            await eventually(lambda: _n_active(c, "late", 2))
            ctrl.queue.add("default/late")
            await _settle(ctrl)
            assert await c.condition("late", "Failed") is None
            clock.offset = timedelta(seconds=31)
            ctrl.queue.add("default/late")
            failed = await eventually(lambda: c.condition("late", "Failed"), what="DeadlineExceeded")
            assert failed["reason"] == "DeadlineExceeded"
            assert failed["message"] == "Job was active longer than specified deadline"
            assert await c.active_pods("late") == []
            st = (await c.job("late"))["status"]
            assert st["failed"] == 2 and "active" not in st
            assert "DeadlineExceeded" in await c.event_reasons("late")


async def test_pod_failure_policy_fail_job() -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest("pfp", podFailurePolicy=policy, backoffLimit=6))
            pods = await eventually(lambda: _n_active(c, "pfp", 1))
            await c.finish_pod(pods[0], exit_code=42)
            failed = await eventually(lambda: c.condition("pfp", "Failed"))
            assert failed["reason"] == "PodFailurePolicy"
            name = pods[0]["metadata"]["name"]
            assert failed["message"] == (f"Container main for pod default/{name} failed with exit code 42 "
                                         "matching FailJob rule at index 0")


async def test_pod_failure_policy_ignores_disruptions() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest("dis", podFailurePolicy=policy, backoffLimit=0))
            pods = await eventually(lambda: _n_active(c, "dis", 1))
            await c.finish_pod(pods[0], exit_code=137, conditions=[{"type": "DisruptionTarget", "status": "True",
                                                                    "reason": "PreemptionByScheduler"}])
            replacement = await eventually(lambda: _n_active(c, "dis", 1), what="replacement")
            assert replacement[0]["metadata"]["name"] != pods[0]["metadata"]["name"]
            await c.finish_pod(replacement[0])
            await eventually(lambda: c.condition("dis", "Complete"))
            st = (await c.job("dis"))["status"]
            assert "failed" not in st and st["succeeded"] == 1


async def test_suspend_and_resume() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        ctrl = JobController(c.client, settings=FAST)
        async with running(ctrl):
            await c.client.create(c.jobs, "default", job_manifest("nap", suspend=True, parallelism=2, completions=2))
            suspended = await eventually(lambda: c.condition("nap", "Suspended"), what="Suspended")
            assert (suspended["reason"], suspended["message"]) == ("JobSuspended", "Job suspended")
            assert await c.job_pods("nap") == [] and "startTime" not in (await c.job("nap"))["status"]
            await c.client.patch(c.jobs, "default", "nap", {"spec": {"suspend": False}})
            await eventually(lambda: _n_active(c, "nap", 2), what="pods after resume")
            job = await c.job("nap")
            resumed = next(cond for cond in job["status"]["conditions"] if cond["type"] == "Suspended")
            assert (resumed["status"], resumed["reason"]) == ("False", "JobResumed")
            assert job["status"]["startTime"]
            await c.client.patch(c.jobs, "default", "nap", {"spec": {"suspend": True}})

            async def emptied() -> bool:
                return await c.job_pods("nap") == [] and await c.condition("nap", "Suspended") is not None
            await eventually(emptied, what="pods deleted on suspend")
            reasons = await c.event_reasons("nap")
            assert {"Suspended", "Resumed", "SuccessfulDelete"} <= set(reasons)


async def test_scale_down_deletes_surplus_pods() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest("wide", parallelism=3, completions=6))
            pods = await eventually(lambda: _n_active(c, "wide", 3))
            await c.run_pod(pods[0])
            await c.client.patch(c.jobs, "default", "wide", {"spec": {"parallelism": 1}})
            kept = await eventually(lambda: _n_active(c, "wide", 1), what="scaled to one")
            assert kept[0]["metadata"]["name"] == pods[0]["metadata"]["name"]  # the running one stays


async def test_backoff_limit_per_index() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest(
                "per", completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=1))
            pods = await eventually(lambda: _n_active(c, "per", 2))
            by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
            assert by_index["0"]["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "0"
            await c.finish_pod(by_index["0"], exit_code=1)

            async def second_try() -> dict[str, object] | None:
                for p in await c.active_pods("per"):
                    if p["metadata"]["name"].startswith("per-0-"):
                        return p
                return None
            retry = await eventually(second_try, what="index 0 retried")
            assert retry["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"  # type: ignore[index]
            await c.finish_pod(retry, exit_code=1)
            await c.finish_pod(by_index["1"])
            failed = await eventually(lambda: c.condition("per", "Failed"), what="Failed")
            assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
            st = (await c.job("per"))["status"]
            assert st["failedIndexes"] == "0" and st["completedIndexes"] == "1"


async def test_success_policy() -> None:
    policy = {"rules": [{"succeededIndexes": "0"}]}
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest(
                "lead", completionMode="Indexed", completions=3, parallelism=3, successPolicy=policy))
            pods = await eventually(lambda: _n_active(c, "lead", 3))
            leader = next(p for p in pods if p["metadata"]["name"].startswith("lead-0-"))
            await c.finish_pod(leader)
            complete = await eventually(lambda: c.condition("lead", "Complete"), what="Complete")
            assert (complete["reason"], complete["message"]) == ("SuccessPolicy", "Matched rules at index 0")
            assert await c.active_pods("lead") == []


async def test_ttl_after_finished_deletes_job_and_pods() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST), TTLAfterFinishedController(c.client),
                           GarbageCollector(c.client)):
            await c.client.create(c.jobs, "default", job_manifest("brief", ttlSecondsAfterFinished=0))
            pods = await eventually(lambda: _n_active(c, "brief", 1))
            await c.finish_pod(pods[0])

            async def gone() -> bool:
                try:
                    await c.job("brief")
                except NotFound:
                    return await c.job_pods("brief") == []
                return False
            await eventually(gone, what="job and pods deleted")


async def test_ttl_waits_until_due() -> None:
    clock = Clock()
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        ttl = TTLAfterFinishedController(c.client, clock=clock)
        async with running(JobController(c.client, settings=FAST), ttl):
            await c.client.create(c.jobs, "default", job_manifest("keep", ttlSecondsAfterFinished=60))
            pods = await eventually(lambda: _n_active(c, "keep", 1))
            await c.finish_pod(pods[0])
            await eventually(lambda: c.condition("keep", "Complete"))
            ttl.queue.add("default/keep")
            await _settle(ttl)  # type: ignore[arg-type]
            assert not (await c.job("keep"))["metadata"].get("deletionTimestamp")
            clock.offset = timedelta(seconds=61)
            ttl.queue.add("default/keep")

            async def deleting() -> bool:
                try:
                    return bool((await c.job("keep"))["metadata"].get("deletionTimestamp"))
                except NotFound:
                    return True
            await eventually(deleting, what="deleted once due")


async def test_deleting_a_running_job_releases_its_pods() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST), GarbageCollector(c.client)):
            await c.client.create(c.jobs, "default", job_manifest("bye", parallelism=2, completions=2))
            await eventually(lambda: _n_active(c, "bye", 2))
            await c.client.delete(c.jobs, "default", "bye", propagation="Background")

            async def no_pods() -> bool:
                return await c.job_pods("bye") == []
            await eventually(no_pods, what="pods gone with their finalizers removed")


async def test_foreground_deletion_of_a_running_job() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST), GarbageCollector(c.client)):
            await c.client.create(c.jobs, "default", job_manifest("fg", parallelism=2, completions=2))
            await eventually(lambda: _n_active(c, "fg", 2))
            await c.client.delete(c.jobs, "default", "fg", propagation="Foreground")

            async def gone() -> bool:
                try:
                    await c.job("fg")
                except NotFound:
                    return await c.job_pods("fg") == []
                return False
            await eventually(gone, what="job and pods gone")


async def test_terminating_namespace_is_not_an_error() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        namespaces = ic.resource("", "v1", "namespaces")
        await c.client.create(namespaces, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
        ctrl = JobController(c.client, settings=FAST)
        async with running(ctrl):
            await c.client.create(c.jobs, "doomed", job_manifest("j", parallelism=0, completions=1))
            await c.client.delete(namespaces, "", "doomed")  # no namespace controller: it stays Terminating
            await c.client.patch(c.jobs, "doomed", "j", {"spec": {"parallelism": 1}})

            async def synced() -> bool:
                return (await c.job("j", "doomed")).get("status", {}).get("ready") == 0
            await eventually(synced, what="the job synced")
            ctrl.queue.add("doomed/j")
            await _settle(ctrl)
            assert await c.job_pods("j", "doomed") == []
            assert "doomed/j" not in ctrl.queue._failures  # refused creations are not an error to retry
