"""The Job controller against an in-process API server, with the test playing kubelet (no nodes run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from test_job_helpers import Cluster, eventually, job_manifest, running

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.gc import GarbageCollector
from nanokube.controllers.job import JobController, JobSettings, TTLAfterFinishedController

FAST = JobSettings(pod_failure_backoff=0.0, pod_failure_backoff_max=0.0)


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def test_completions_and_parallelism() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            job = await c.client.create(c.jobs, "default", job_manifest("calc", completions=3, parallelism=2))
            pods = await eventually(lambda: _n_active(c, "calc", 2), what="two pods")
            pod = pods[0]
            meta = pod["metadata"]
            assert meta["name"].startswith("calc-") and len(meta["name"]) == len("calc-") + 5
            assert meta["labels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]
            assert meta["labels"]["job-name"] == "calc"
            assert meta["finalizers"] == ["batch.kubernetes.io/job-tracking"]
            assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "calc",
                                                "uid": job["metadata"]["uid"], "controller": True,
                                                "blockOwnerDeletion": True}]
            await c.finish_pod(pods[0])
            # Only one more Pod is wanted: 3 completions, 1 done, 1 running.
            await eventually(lambda: _succeeded(c, "calc", 1), what="one success counted")
            pods = await eventually(lambda: _n_active(c, "calc", 2), what="a replacement")
            for pod in pods:
                await c.finish_pod(pod)
            complete = await eventually(lambda: c.condition("calc", "Complete"), what="Complete")
            assert complete["reason"] == "CompletionsReached"
            assert complete["message"] == "Reached expected number of succeeded pods"
            job = await c.job("calc")
            st = job["status"]
            assert st["succeeded"] == 3 and "failed" not in st and "active" not in st
            assert st["ready"] == 0 and st["terminating"] == 0 and st["uncountedTerminatedPods"] == {}
            assert st["completionTime"] == complete["lastTransitionTime"] and st["startTime"]
            assert [cond["type"] for cond in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]
            assert len(await c.job_pods("calc")) == 3
            assert all(not p["metadata"].get("finalizers") for p in await c.job_pods("calc"))
            reasons = await c.event_reasons("calc")
            assert reasons.count("SuccessfulCreate") == 3 and "Completed" in reasons


async def test_ready_and_active_counts() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest("r", parallelism=2, completions=4))
            pods = await eventually(lambda: _n_active(c, "r", 2))
            await c.run_pod(pods[0])

            async def counted() -> bool:
                st = (await c.job("r")).get("status") or {}
                return st.get("active") == 2 and st.get("ready") == 1
            await eventually(counted, what="active 2, ready 1")


async def test_indexed_job() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest("idx", completions=3, parallelism=3,
                                                                  completionMode="Indexed"))
            pods = await eventually(lambda: _n_active(c, "idx", 3))
            by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
            assert sorted(by_index) == ["0", "1", "2"]
            one = by_index["1"]
            assert one["metadata"]["name"].startswith("idx-1-")
            assert one["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
            assert one["spec"]["hostname"] == "idx-1"
            assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "apiVersion": "v1",
                "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}} in \
                one["spec"]["containers"][0]["env"]
            await c.finish_pod(one)

            async def indexes(text: str) -> bool:
                return ((await c.job("idx")).get("status") or {}).get("completedIndexes") == text
            await eventually(lambda: indexes("1"), what="index 1 completed")
            # A failed index is retried under the same index.
            await c.finish_pod(by_index["2"], exit_code=1)

            async def retried() -> list[dict[str, object]] | None:
                active = await c.active_pods("idx")
                again = [p for p in active if p["metadata"]["name"].startswith("idx-2-")]
                return again if len(active) == 2 and again else None
            again = await eventually(retried, what="index 2 retried")
            await c.finish_pod(again[0])
            await c.finish_pod(by_index["0"])
            await eventually(lambda: c.condition("idx", "Complete"))
            st = (await c.job("idx"))["status"]
            assert st["completedIndexes"] == "0-2" and st["succeeded"] == 3 and st["failed"] == 1


async def test_backoff_limit_fails_the_job() -> None:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        async with running(JobController(c.client, settings=FAST)):
            await c.client.create(c.jobs, "default", job_manifest("flaky", backoffLimit=1))
            for attempt in range(2):
                pods = await eventually(lambda: _n_active(c, "flaky", 1), what=f"attempt {attempt}")
                await c.finish_pod(pods[0], exit_code=2)
            failed = await eventually(lambda: c.condition("flaky", "Failed"), what="Failed")
            assert failed["reason"] == "BackoffLimitExceeded"
            assert failed["message"] == "Job has reached the specified backoff limit"
            job = await c.job("flaky")
            assert [cond["type"] for cond in job["status"]["conditions"]] == ["FailureTarget", "Failed"]
            assert job["status"]["failed"] == 2 and "completionTime" not in job["status"]
            assert len(await c.job_pods("flaky")) == 2
            assert "BackoffLimitExceeded" in await c.event_reasons("flaky")


async def test_backoff_delays_the_replacement() -> None:
    clock = Clock()
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        ctrl = JobController(c.client, settings=JobSettings(pod_failure_backoff=100.0), clock=clock)
        async with running(ctrl):
            await c.client.create(c.jobs, "default", job_manifest("slow", backoffLimit=3))
            pods = await eventually(lambda: _n_active(c, "slow", 1))
            await c.finish_pod(pods[0], exit_code=1)

            async def failed_counted() -> bool:
                return ((await c.job("slow")).get("status") or {}).get("failed") == 1
            await eventually(failed_counted, what="failure counted")
            ctrl.queue.add("default/slow")
            await _settle(ctrl)
            assert await c.active_pods("slow") == []  # still backing off
            clock.offset = timedelta(seconds=101)
            ctrl.queue.add("default/slow")
            await eventually(lambda: _n_active(c, "slow", 1), what="replacement after back-off")


async def _settle(ctrl: JobController) -> None:
    async def idle() -> bool:
        return len(ctrl.queue) == 0 and not ctrl.queue._processing
    await eventually(idle, what="queue drained")


async def _n_active(c: Cluster, name: str, n: int) -> list[dict[str, object]] | None:
    pods = await c.active_pods(name)
    return pods if len(pods) == n else None


async def _succeeded(c: Cluster, name: str, n: int) -> bool:
    return ((await c.job(name)).get("status") or {}).get("succeeded") == n


__all__ = ["Clock", "GarbageCollector", "TTLAfterFinishedController"]
