"""The fake runtime: sandbox IPs, containers that run and exit by plan, stop codes, events; IP pools; images."""

from __future__ import annotations

import asyncio

import pytest

from nanokube.kubelet.runtime.fake import (
    ContainerPlan,
    FakeRuntime,
    FakeRuntimeSettings,
    annotation_plan,
    normalize_image,
)
from nanokube.kubelet.runtime.interface import (
    CONTAINER_KIND_LABEL,
    CONTAINER_NAME_LABEL,
    ContainerConfig,
    ContainerEvent,
    ContainerMetadata,
    ContainerState,
    EventType,
    ImageSpec,
    LogOptions,
    NotFoundFailure,
    PodSandboxConfig,
    PodSandboxMetadata,
    RuntimeFailure,
    SandboxFailure,
    SandboxState,
)
from nanokube.kubelet.runtime.ipam import IPPool


def sandbox_config(uid: str = "u1", **annotations: str) -> PodSandboxConfig:
    return PodSandboxConfig(PodSandboxMetadata("p", "default", uid), annotations=dict(annotations))


def container_config(name: str = "web", kind: str = "regular", attempt: int = 0) -> ContainerConfig:
    return ContainerConfig(ContainerMetadata(name, attempt), "nginx",
                           labels={CONTAINER_NAME_LABEL: name, CONTAINER_KIND_LABEL: kind})


async def started(runtime: FakeRuntime, sandbox: str, config: ContainerConfig,
                  sb_config: PodSandboxConfig) -> str:
    await runtime.pull_image(ImageSpec(config.image))
    cid = await runtime.create_container(sandbox, config, sb_config)
    await runtime.start_container(cid)
    return cid


def test_ip_pool_skips_the_gateway_wraps_and_runs_out() -> None:
    pool = IPPool("10.42.3.0/29")  # .2 .. .6 usable
    assert pool.gateway == "10.42.3.1"
    ips = [pool.allocate() for _ in range(5)]
    assert ips == [f"10.42.3.{i}" for i in range(2, 7)]
    with pytest.raises(SandboxFailure, match="no IP addresses available"):
        pool.allocate()
    pool.release("10.42.3.3")
    assert pool.allocate() == "10.42.3.3"


def test_ip_pool_hands_out_a_new_address_after_a_release() -> None:
    pool = IPPool("10.42.0.0/24")
    first = pool.allocate()
    pool.release(first)
    assert pool.allocate() != first  # a replacement Pod gets a new IP


def test_annotation_plan() -> None:
    plain = sandbox_config()
    assert annotation_plan(plain, container_config()) == ContainerPlan(None, 0)
    assert annotation_plan(plain, container_config("setup", "init")) == ContainerPlan(0.0, 0)
    notes = sandbox_config(**{"sim.nanokube.io/run-seconds": "5", "sim.nanokube.io/exit-code": "1",
                              "sim.nanokube.io/run-seconds.side": "7", "sim.nanokube.io/exit-code.setup": "3"})
    assert annotation_plan(notes, container_config()) == ContainerPlan(5.0, 1)
    assert annotation_plan(notes, container_config("side")) == ContainerPlan(7.0, 1)
    assert annotation_plan(notes, container_config("setup", "init")) == ContainerPlan(0.0, 3)
    junk = sandbox_config(**{"sim.nanokube.io/run-seconds": "soon"})
    assert annotation_plan(junk, container_config()) == ContainerPlan(None, 0)


@pytest.mark.parametrize(("given", "normal"), [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
])
def test_normalize_image(given: str, normal: str) -> None:
    assert normalize_image(given) == normal


async def test_sandbox_gets_an_ip_and_releases_it_when_stopped() -> None:
    runtime = FakeRuntime(pod_cidr="10.42.5.0/24")
    sid = await runtime.run_pod_sandbox(sandbox_config())
    status = await runtime.pod_sandbox_status(sid)
    assert status.state is SandboxState.READY and status.ip == "10.42.5.2"
    assert [s.id for s in await runtime.list_pod_sandboxes("u1")] == [sid]
    assert await runtime.list_pod_sandboxes("other") == []
    await runtime.stop_pod_sandbox(sid)
    assert (await runtime.pod_sandbox_status(sid)).state is SandboxState.NOT_READY
    await runtime.remove_pod_sandbox(sid)
    assert await runtime.list_pod_sandboxes("u1") == []
    with pytest.raises(NotFoundFailure):
        await runtime.pod_sandbox_status(sid)


async def test_host_network_sandboxes_take_no_ip_and_no_cidr_means_no_sandbox() -> None:
    runtime = FakeRuntime()
    with pytest.raises(SandboxFailure):
        await runtime.run_pod_sandbox(sandbox_config())
    config = sandbox_config()
    config.host_network = True
    sid = await runtime.run_pod_sandbox(config)
    assert (await runtime.pod_sandbox_status(sid)).ip == ""


async def test_a_container_runs_for_its_planned_time_and_exits_with_its_code() -> None:
    runtime = FakeRuntime(pod_cidr="10.42.0.0/24")
    events: list[ContainerEvent] = []
    runtime.subscribe(events.append)
    sb = sandbox_config(**{"sim.nanokube.io/run-seconds": "0.05", "sim.nanokube.io/exit-code": "4"})
    sid = await runtime.run_pod_sandbox(sb)
    cid = await started(runtime, sid, container_config(), sb)
    assert (await runtime.container_status(cid)).state is ContainerState.RUNNING
    stopped = asyncio.Event()
    runtime.subscribe(lambda e: stopped.set() if e.type is EventType.STOPPED else None)
    await asyncio.wait_for(stopped.wait(), 5)
    status = await runtime.container_status(cid)
    assert status.state is ContainerState.EXITED and status.exit_code == 4 and status.reason == "Error"
    assert status.finished_at >= status.started_at
    assert [e.type for e in events] == [EventType.CREATED, EventType.STARTED, EventType.STOPPED]
    assert all(e.pod_uid == "u1" for e in events)


async def test_stop_codes_and_container_bookkeeping() -> None:
    runtime = FakeRuntime(FakeRuntimeSettings(term_exit_code=0), pod_cidr="10.42.0.0/24")
    sb = sandbox_config()
    sid = await runtime.run_pod_sandbox(sb)
    graceful = await started(runtime, sid, container_config("a"), sb)
    killed = await started(runtime, sid, container_config("b"), sb)
    await runtime.stop_container(graceful, 30)
    await runtime.stop_container(killed, 0)
    assert (await runtime.container_status(graceful)).exit_code == 0
    assert (await runtime.container_status(killed)).exit_code == 137
    assert {c.id for c in await runtime.list_containers(sid)} == {graceful, killed}
    with pytest.raises(RuntimeFailure):
        await runtime.start_container(graceful)  # never restarted in place
    await runtime.remove_container(graceful)
    assert [c.id for c in await runtime.list_containers(sid)] == [killed]


async def test_containers_need_a_ready_sandbox_and_a_pulled_image() -> None:
    runtime = FakeRuntime(pod_cidr="10.42.0.0/24")
    sb = sandbox_config()
    sid = await runtime.run_pod_sandbox(sb)
    with pytest.raises(RuntimeFailure, match="not present"):
        await runtime.create_container(sid, container_config(), sb)
    ref = await runtime.pull_image(ImageSpec("nginx"))
    assert ref.startswith("docker.io/library/nginx@sha256:")
    assert await runtime.image_status(ImageSpec("docker.io/library/nginx:latest")) is not None
    assert len(await runtime.list_images()) == 1
    await runtime.stop_pod_sandbox(sid)
    with pytest.raises(RuntimeFailure, match="not ready"):
        await runtime.create_container(sid, container_config(), sb)


async def test_sandbox_delay_comes_from_settings() -> None:
    runtime = FakeRuntime(FakeRuntimeSettings(sandbox_delay=(0.05, 0.05)), pod_cidr="10.42.0.0/24")
    task = asyncio.create_task(runtime.run_pod_sandbox(sandbox_config()))
    await asyncio.sleep(0)
    assert not task.done()  # still "creating"
    assert await asyncio.wait_for(task, 5)


async def test_logs_and_stubs() -> None:
    runtime = FakeRuntime(pod_cidr="10.42.0.0/24")
    sb = sandbox_config()
    sid = await runtime.run_pod_sandbox(sb)
    cid = await started(runtime, sid, container_config(), sb)
    lines = [line async for line in runtime.logs(cid, LogOptions())]
    assert lines and b"started" in lines[0]
    assert (await runtime.exec_sync(cid, ["true"])).exit_code == 0
    with pytest.raises(RuntimeFailure):  # only built-in commands run (runtime.fakestreams)
        await runtime.exec(cid, ["nginx"], stdin=False, tty=False)
    assert (await runtime.version()).runtime_name == "fake"
    assert all(c.status for c in await runtime.status())
