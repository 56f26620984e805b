"""The Pod syncer's extension points after its split: ``ContainerRunner`` (sync_containers.py) builds sandboxes
and containers from the ``PodSyncer``'s own ``sandbox_config``/``container_config``, so a subclass that
overrides them is what the runtime sees, on the first start and on restarts."""

from __future__ import annotations

from typing import Any

from kubelet_helpers import eventually, pod

from nanokube.cmd.inprocess import InProcessCluster
from nanokube.kubelet.runtime.fake import FakeRuntime
from nanokube.kubelet.runtime.interface import ContainerConfig, ContainerState, PodSandboxConfig
from nanokube.kubelet.status import StatusManager
from nanokube.kubelet.sync import PodSyncer, SyncSettings

JSON = dict[str, Any]


class TaggingSyncer(PodSyncer):
    def sandbox_config(self, pod: JSON, attempt: int) -> PodSandboxConfig:
        config = super().sandbox_config(pod, attempt)
        config.labels["example.com/sandbox"] = "tagged"
        return config

    def container_config(self, pod: JSON, spec: JSON, kind: str, attempt: int) -> ContainerConfig:
        config = super().container_config(pod, spec, kind, attempt)
        config.labels["example.com/container"] = f"{kind}-{attempt}"
        return config


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_overridden_configs_reach_the_runtime_on_start_and_restart() -> None:
    async with InProcessCluster() as cluster:
        status = StatusManager(cluster.client)
        runtime, clock = FakeRuntime(pod_cidr="10.42.9.0/24"), Clock()
        syncer = TaggingSyncer(SyncSettings("n", ("192.0.2.1",), backoff_initial=10), runtime, status, clock=clock)
        p = pod("p", "n", init=["setup"])
        p["metadata"]["uid"] = "u1"
        status.observe(p)
        await syncer.sync(p)  # sandbox and the init container
        sandboxes = await runtime.list_pod_sandboxes("u1")
        assert [s.labels.get("example.com/sandbox") for s in sandboxes] == ["tagged"]

        async def app_started() -> list[Any]:
            await syncer.sync(p)  # once the init container has exited (at once, in the fake), the app starts
            return [c for c in await runtime.list_containers() if c.metadata.name == "web"]

        web = await eventually(app_started, what="the app container")
        assert [c.labels.get("example.com/container") for c in web] == ["regular-0"]
        assert [c.labels.get("example.com/container") for c in await runtime.list_containers()
                if c.metadata.name == "setup"] == ["init-0"]
        await runtime.stop_container(web[0].id, 0)  # exits; restartPolicy Always restarts it
        clock.now += 1
        await syncer.sync(p)
        attempts = sorted((c.metadata.attempt, c.labels.get("example.com/container"), c.state)
                          for c in await runtime.list_containers() if c.metadata.name == "web")
        assert attempts == [(0, "regular-0", ContainerState.EXITED), (1, "regular-1", ContainerState.RUNNING)]
