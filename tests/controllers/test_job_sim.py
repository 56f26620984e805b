"""Jobs whose Pods run on a simulated node: the kubelet's real status writes, graceful deletion and exit
codes (``sim.nanokube.io/*`` annotations) instead of the test playing kubelet. A stand-in scheduler binds
every pending Pod to the one node."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from test_job_controller import FAST
from test_job_helpers import Cluster, eventually, job_manifest, running

from nanokube.api.errors import ApiError
from nanokube.cmd.inprocess import InProcessCluster
from nanokube.controllers.job import JobController
from nanokube.kubelet.sim import SimSettings, Simulator


def sim_job(name: str, run_seconds: float | None, exit_code: int = 0, **spec: Any) -> dict[str, Any]:
    body = job_manifest(name, **spec)
    annotations = {"sim.nanokube.io/exit-code": str(exit_code)}
    if run_seconds is not None:
        annotations["sim.nanokube.io/run-seconds"] = str(run_seconds)
    body["spec"]["template"]["metadata"] = {"annotations": annotations}
    return body


@contextlib.asynccontextmanager
async def binder(c: Cluster, node: str) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            for pod in (await c.client.list(c.pods, "")).items:
                if not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        await c.client.bind(pod["metadata"]["namespace"], pod["metadata"]["name"], node)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def sim_cluster() -> AsyncIterator[Cluster]:
    async with InProcessCluster() as ic:
        c = Cluster(ic)
        sim = Simulator(c.client, SimSettings(nodes=1, pod_start_delay=(0.0, 0.0), events=False))
        async with running(sim, JobController(c.client, settings=FAST)), binder(c, "sim-node-0"):
            yield c


async def _status(c: Cluster, name: str) -> dict[str, Any]:
    return (await c.job(name)).get("status") or {}


async def test_job_completes_on_a_simulated_node() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.jobs, "default", sim_job("sim-ok", 0.1, completions=3, parallelism=2))
        await eventually(lambda: c.condition("sim-ok", "Complete"), what="Complete")
        st = await _status(c, "sim-ok")
        assert st["succeeded"] == 3 and st["uncountedTerminatedPods"] == {}
        pods = await c.job_pods("sim-ok")
        assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}


async def test_failing_job_on_a_simulated_node() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.jobs, "default", sim_job("sim-bad", 0, exit_code=3, backoffLimit=1))
        failed = await eventually(lambda: c.condition("sim-bad", "Failed"), what="Failed")
        assert failed["reason"] == "BackoffLimitExceeded"
        assert (await _status(c, "sim-bad"))["failed"] == 2


async def test_deadline_stops_running_pods() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.jobs, "default", sim_job("sim-late", None, activeDeadlineSeconds=1, parallelism=2,
                                                         completions=2))
        failed = await eventually(lambda: c.condition("sim-late", "Failed"), what="Failed")
        assert failed["reason"] == "DeadlineExceeded"
        st = await _status(c, "sim-late")
        assert st["terminating"] == 0 and "active" not in st and st["failed"] == 2

        async def gone() -> bool:
            return await c.job_pods("sim-late") == []
        await eventually(gone, what="the killed pods gone")


async def test_suspend_stops_running_pods() -> None:
    async with sim_cluster() as c:
        await c.client.create(c.jobs, "default", sim_job("sim-nap", None, parallelism=2, completions=2))

        async def running_pods() -> bool:
            pods = await c.job_pods("sim-nap")
            return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)
        await eventually(running_pods, what="two running pods")
        await c.client.patch(c.jobs, "default", "sim-nap", {"spec": {"suspend": True}})

        async def suspended() -> bool:
            st = await _status(c, "sim-nap")
            return (await c.condition("sim-nap", "Suspended") is not None and not st.get("active")
                    and await c.job_pods("sim-nap") == [] and st.get("terminating") == 0)
        await eventually(suspended, what="suspended with its pods gone")
